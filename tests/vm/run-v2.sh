#!/usr/bin/env bash
# Runs pytest on a pure cgroup v2 kernel: boots Debian's kernel (linux-image-amd64) under
# QEMU with cgroup_no_v1=all, the host's root filesystem shared read-only over virtio-9p
# under a writable tmpfs overlay, cgroup2 mounted at /sys/fs/cgroup with every controller,
# and runs `python -m pytest ARGS` from this repository inside it, as root.
#
#   tests/vm/run-v2.sh [pytest args]        # default: the live test files
#
# Environment: PYTHON (the interpreter with pycgroup installed; default python3 on PATH),
# OUT (a directory for the results; default a new temporary one), KERNEL (default the
# newest /boot/vmlinuz-*), VM_CPUS (2), VM_MEMORY (1536M), VM_TIMEOUT (seconds, 1800),
# VM_ACCEL ("kvm", "tcg" or "auto", the default: KVM when /dev/kvm boots a guest within
# BOOT_TIMEOUT seconds (30), else emulation). Writes OUT/console.log (the guest's serial console), OUT/pytest.log,
# OUT/junit.xml, OUT/cgroup.controllers and OUT/mountinfo (what the guest ran on), and
# OUT/rc (pytest's exit status); exits with that status (125 when the guest did not
# get as far as running pytest). Needs qemu-system-x86, linux-image-amd64 and
# busybox-static (.ci/provision.d/30-qemu.sh installs them).
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
python="$(command -v "${PYTHON:-python3}")"
kernel="${KERNEL:-$(ls -1v /boot/vmlinuz-* 2>/dev/null | tail -n 1)}"
[ -n "$kernel" ] && [ -r "$kernel" ] || { echo "run-v2.sh: no kernel in /boot (apt-get install linux-image-amd64)" >&2; exit 125; }
release="${kernel##*/vmlinuz-}"
modules="/lib/modules/$release"
busybox="$(command -v busybox)" || { echo "run-v2.sh: no busybox (apt-get install busybox-static)" >&2; exit 125; }
qemu="$(command -v qemu-system-x86_64)" || { echo "run-v2.sh: no qemu-system-x86_64 (apt-get install qemu-system-x86)" >&2; exit 125; }
out="${OUT:-$(mktemp -d /tmp/pycgroup-vm.XXXXXX)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [ $# -eq 0 ]; then
  set -- tests/test_live.py tests/test_live_sampler.py
fi

work="$(mktemp -d /tmp/pycgroup-vm-initramfs.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# The initramfs: a static busybox, the modules for virtio-9p and overlayfs (with their
# dependencies, in load order), and /init below.
mkdir -p "$work/root/bin" "$work/root/modules" "$work/root/proc" "$work/root/sys" \
  "$work/root/dev" "$work/root/mnt/lower" "$work/root/mnt/rw" "$work/root/mnt/root"
cp "$busybox" "$work/root/bin/busybox"
loaded=" "
add_module() {  # copies a module after the modules it depends on
  local name="$1" dep file
  case "$loaded" in *" $name "*) return ;; esac
  file="$(modinfo -k "$release" -F filename "$name" 2>/dev/null)" || return 0
  case "$file" in /*) ;; *) return 0 ;; esac  # built into the kernel
  for dep in $(modinfo -k "$release" -F depends "$name" | tr ',' ' '); do
    add_module "$dep"
  done
  loaded="$loaded$name "
  cp "$file" "$work/root/modules/$(printf '%02d' "$(echo $loaded | wc -w)")-$name.ko"
}
for name in virtio_pci 9pnet_virtio 9p overlay; do add_module "$name"; done

cat > "$work/root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
echo "pycgroup-vm: init started"
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for module in /modules/*.ko; do insmod "$module" || echo "init: insmod $module failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose hostroot /mnt/lower
mount -t tmpfs -o mode=0755 rw /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
if ! mount -t overlay overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work /mnt/root; then
  echo "init: no overlay on 9p; the root stays read-only with tmpfs where tests write"
  mount --bind /mnt/lower /mnt/root
fi
root=/mnt/root
mount -t proc proc $root/proc
mount -t sysfs sys $root/sys
mount -t devtmpfs dev $root/dev
mount -t cgroup2 cgroup2 $root/sys/fs/cgroup
for dir in tmp run var/tmp; do mount -t tmpfs -o mode=1777 tmp $root/$dir; done
mkdir -p $root/run/vm-out
mount -t 9p -o trans=virtio,version=9p2000.L out $root/run/vm-out
# The checkout, shared on its own: it may live where the guest mounts a tmpfs (/tmp).
repo=$(cat /repo-path)
mkdir -p /mnt/repo-lower /mnt/rw/repo-upper /mnt/rw/repo-work $root$repo
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose repo /mnt/repo-lower
if ! mount -t overlay overlay -o lowerdir=/mnt/repo-lower,upperdir=/mnt/rw/repo-upper,workdir=/mnt/rw/repo-work $root$repo; then
  mount --bind /mnt/repo-lower $root$repo
fi
chroot $root /bin/sh /run/vm-out/guest.sh
echo "init: guest.sh exited with $?"
sync
poweroff -f
INIT
chmod +x "$work/root/init"
printf '%s\n' "$repo" > "$work/root/repo-path"
(cd "$work/root" && find . | cpio --quiet -o -H newc | gzip -1 > "$work/initramfs.gz")

# What the guest runs, in the host's root filesystem seen through the overlay.
{
  echo "cd $(printf %q "$repo")"
  echo "cat /sys/fs/cgroup/cgroup.controllers > /run/vm-out/cgroup.controllers"
  echo "cat /proc/self/mountinfo > /run/vm-out/mountinfo"
  echo "export PYTHONDONTWRITEBYTECODE=1 HOME=/tmp TMPDIR=/tmp"
  echo "export PATH=$(printf %q "$(dirname "$python"):$PATH")"  # the pycgroup command too
  echo "export PYTEST_ADDOPTS=$(printf %q "${PYTEST_ADDOPTS:-}")"
  printf '%q -m pytest -p no:cacheprovider -rs --junitxml=/run/vm-out/junit.xml' "$python"
  printf ' %q' "$@"
  echo " > /run/vm-out/pytest.log 2>&1"
  echo "echo \$? > /run/vm-out/rc"
} > "$out/guest.sh"
rm -f "$out/rc"

boot() {  # boot ACCEL CPU: runs the guest once; returns 1 if it did not reach /init in time
  local accel="$1" cpu="$2" waited=0
  rm -f "$out/console.log"
  timeout -k 10 "${VM_TIMEOUT:-1800}" "$qemu" \
    -machine q35,accel="$accel" -cpu "$cpu" -smp "${VM_CPUS:-2}" -m "${VM_MEMORY:-1536M}" \
    -kernel "$kernel" -initrd "$work/initramfs.gz" \
    -append "console=ttyS0 cgroup_no_v1=all panic=-1 quiet rdinit=/init" \
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$out,mount_tag=out,security_model=none,multidevs=remap" \
    -virtfs "local,path=$repo,mount_tag=repo,security_model=none,readonly=on,multidevs=remap" \
    -display none -serial "file:$out/console.log" -monitor none -no-reboot -nic none \
    </dev/null &
  local vm=$!
  # A guest that hangs in early boot (seen with KVM in some nested setups) never prints
  # init's first line: give up on it after BOOT_TIMEOUT seconds.
  until grep -q "pycgroup-vm: init started" "$out/console.log" 2>/dev/null; do
    if ! kill -0 "$vm" 2>/dev/null || [ "$waited" -ge "${BOOT_TIMEOUT:-180}" ]; then
      kill "$vm" 2>/dev/null || true
      wait "$vm" || true
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  wait "$vm" || true
}

accel="${VM_ACCEL:-auto}"
if [ "$accel" = auto ]; then
  accel=tcg
  if [ -w /dev/kvm ]; then accel=kvm; fi
fi
if [ "$accel" = kvm ]; then
  if ! BOOT_TIMEOUT="${BOOT_TIMEOUT:-30}" boot kvm "${VM_CPU:-host}" && [ "${VM_ACCEL:-auto}" = auto ]; then
    echo "run-v2.sh: the guest did not reach /init under KVM; booting it under emulation" >&2
    mv "$out/console.log" "$out/console-kvm.log" 2>/dev/null || true
    accel=tcg
  fi
fi
if [ "$accel" = tcg ]; then
  boot tcg max || true
fi
echo "$accel" > "$out/accel"
if [ ! -e "$out/rc" ]; then
  echo "run-v2.sh: the guest did not run pytest; its console is $out/console.log" >&2
  tail -n 30 "$out/console.log" >&2 || true
  exit 125
fi
cat "$out/pytest.log"
exit "$(cat "$out/rc")"
