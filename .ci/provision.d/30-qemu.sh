#!/usr/bin/env bash
# The pure cgroup v2 tier (tests/vm/): QEMU boots Debian's kernel with cgroup_no_v1=all;
# busybox-static is the guest's tiny init (cpio packs it, kmod finds its modules). Safe to
# run again.
set -euo pipefail
need=()
for package in qemu-system-x86 linux-image-amd64 busybox-static cpio kmod; do
  dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
done
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
