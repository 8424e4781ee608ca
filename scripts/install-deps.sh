#!/usr/bin/env bash
# Installs everything vstorage needs to build, run and test, from Debian's archive only.
# Idempotent: skips apt entirely when every package is already installed.
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config libisal-dev libfuse3-dev fuse3 libssl-dev
      nlohmann-json3-dev libgtest-dev libgmock-dev python3-pytest fio psmisc procps
      e2fsprogs util-linux mount qemu-utils libasio-dev liburing-dev acl tshark prometheus
      libncurses-dev tmux)
if [ "${1:-}" = "--bench" ]; then PKGS+=(moosefs-master moosefs-chunkserver moosefs-client); fi
if [ "${1:-}" = "--fuzz" ]; then PKGS+=(clang libclang-rt-14-dev); fi  # libFuzzer: make fuzz
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "install-deps: installing ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
