#include "env/env.h"

namespace vstorage::env {

PosixEnv::PosixEnv()
    : clock_(NewPosixClock()),
      random_(NewRealSeededRandom()),
      fs_(NewPosixFileSystem()),
      env_{clock_.get(), random_.get(), fs_.get()} {}

SimEnv::SimEnv(uint64_t seed)
    : random_(seed),
      fault_random_(random_.Fork()),
      faults_(&mem_, fault_random_.get()),
      env_{&clock_, &random_, &faults_} {}

}  // namespace vstorage::env
