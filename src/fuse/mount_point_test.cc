#include "fuse/mount_point.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace vstorage::fuse {
namespace {

namespace fs = std::filesystem;

const char* kMountinfo =
    "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
    "91 27 0:50 / /vstorage/stor1 rw,nosuid,nodev,relatime shared:7 - fuse.vstorage "
    "vstorage://stor1 rw,user_id=0,group_id=0\n"
    "92 27 0:51 / /mnt/with\\040space rw,relatime - fuse.vstorage vstorage://stor2 rw\n"
    "93 27 0:52 / /mnt/other rw,relatime - fuse.sshfs vstorage://stor1 rw\n";

TEST(MountPoint, FindsTheSameClusterMountedOnTheDirectory) {
  EXPECT_TRUE(IsVstorageMountOf(kMountinfo, "/vstorage/stor1", "stor1"));
  EXPECT_FALSE(IsVstorageMountOf(kMountinfo, "/vstorage/stor1", "stor2"));
  EXPECT_FALSE(IsVstorageMountOf(kMountinfo, "/vstorage", "stor1"));
  EXPECT_TRUE(IsVstorageMountOf(kMountinfo, "/mnt/with space", "stor2"));
  EXPECT_FALSE(IsVstorageMountOf(kMountinfo, "/mnt/other", "stor1"));  // not our file system
  EXPECT_FALSE(IsVstorageMountOf("", "/vstorage/stor1", "stor1"));
  EXPECT_FALSE(IsVstorageMountOf("garbage line\n1 2 3 4 5 6 -\n", "5", "stor1"));
}

TEST(MountPoint, RefusesAFileAndAnExistingMount) {
  char tmpl[] = "/tmp/vs_mount_point.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::string file = dir + "/file";
  std::ofstream(file) << "x";

  EXPECT_TRUE(CheckMountPoint(dir, "stor1", kMountinfo).ok());
  Status st = CheckMountPoint(file, "stor1", kMountinfo);
  EXPECT_EQ(st.code(), Code::kNotDir);
  EXPECT_NE(st.message().find(file + " is a regular file, not a directory"), std::string::npos)
      << st.message();
  st = CheckMountPoint(dir + "/missing", "stor1", kMountinfo);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("No such file"), std::string::npos) << st.message();

  std::string info = "91 27 0:50 / " + dir + " rw - fuse.vstorage vstorage://stor1 rw\n";
  st = CheckMountPoint(dir, "stor1", info);
  EXPECT_EQ(st.code(), Code::kExists);
  EXPECT_NE(st.message().find("cluster 'stor1' is already mounted on " + dir), std::string::npos)
      << st.message();
  EXPECT_TRUE(CheckMountPoint(dir, "stor9", info).ok());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vstorage::fuse
