# The disk: a fresh partition table per the plan, file systems with labels (the root is rackseed-root, which the
# kernel boot script names), and the new tree mounted at /target.

TARGET=/target

# partdev N: /dev/vda + 1 -> /dev/vda1, /dev/nvme0n1 + 1 -> /dev/nvme0n1p1
partdev() {
  case "$P_DISK" in
    *[0-9]) echo "${P_DISK}p$1" ;;
    *) echo "$P_DISK$1" ;;
  esac
}

# wait_block DEV: drivers and udev-less devtmpfs add nodes asynchronously.
wait_block() {
  _w=0
  while [ ! -b "$1" ] && [ $_w -lt 100 ]; do usleep 100000; _w=$((_w + 1)); done
  [ -b "$1" ]
}

# label N MOUNT FS: the file system label fstab refers to.
part_label() {
  case "$3:$2" in
    ext4:/) echo rackseed-root ;;
    swap:*) echo "rs-swap$1" ;;
    vfat:*) echo "RS-P$1" ;;
    *) echo "rs-p$1" ;;
  esac
}

partition_disk() {
  wait_block "$P_DISK" || { DISK_ERROR="disk $P_DISK does not exist"; return 1; }
  bios_boot=0
  if [ "$P_BOOT" = local ] && [ "$P_TABLE" = gpt ] && [ ! -d /sys/firmware/efi ]; then
    bios_boot=1
    # The gap between GPT's 16 KiB partition array and the first 1 MiB aligned partition, in the disk's own
    # sectors: 34-2047 on a 512-byte disk, 6-255 on a 4Kn one.
    _sector=$(cat "/sys/class/block/$(basename "$P_DISK")/queue/logical_block_size" 2>/dev/null || echo 512)
    bios_first=$(( 16384 / _sector + 2 ))
    bios_size=$(( 1048576 / _sector - bios_first ))
  fi
  {
    echo "label: $P_TABLE"
    if [ $bios_boot = 1 ]; then echo "first-lba: $bios_first"; fi
    while read -r n size fs mount; do
      case "$fs:$mount" in
        vfat:/boot/efi) t=U ;;
        swap:*) t=S ;;
        *) t=L ;;
      esac
      [ "$size" = rest ] && size=''
      echo ",$size,$t"
    done < "$PARTS"
    # GRUB on a BIOS machine embeds its core in a BIOS boot partition when the table is GPT. It goes in the gap
    # before the first (1 MiB aligned) partition and is numbered after the plan's, so their numbers do not move.
    if [ $bios_boot = 1 ]; then echo "start=$bios_first, size=$bios_size, type=21686148-6449-6E6F-744E-656564454649"; fi
  } > /run/sfdisk.in
  if ! sfdisk --wipe always --wipe-partitions always -q "$P_DISK" < /run/sfdisk.in > /run/sfdisk.log 2>&1; then
    cat /run/sfdisk.log
    # sfdisk -q can fail with nothing to say (an overlap it finds only when writing): the layout it was given then
    # tells the operator more than an empty reason.
    _why="$(grep -v '^[[:space:]]*$' /run/sfdisk.log | tail -n 1)"
    DISK_ERROR="sfdisk $P_DISK: ${_why:-failed without a message}; the layout was: $(tr '\n' ';' < /run/sfdisk.in)"
    return 1
  fi
  while read -r n _rest; do
    wait_block "$(partdev "$n")" || { DISK_ERROR="partition $(partdev "$n") did not appear"; return 1; }
  done < "$PARTS"
  check_partition_sizes || return 1
  if [ $bios_boot = 1 ]; then say "BIOS boot partition for GRUB in sectors $bios_first-$((bios_first + bios_size - 1)) of $P_DISK"; fi
}

# sfdisk cuts a GPT partition that does not fit down to the space left, and exits 0 (a dos table fails instead): a
# layout larger than the disk would install into partitions the operator never asked for. Each fixed size is checked
# against what sfdisk made (sfdisk's K/M/G/T are binary, as here), and `rest` must leave a usable partition.
REST_MIN_MIB=16
check_partition_sizes() {
  _disk_mib=$(( $(cat "/sys/class/block/$(basename "$P_DISK")/size" 2>/dev/null || echo 0) / 2048 ))
  while read -r n size _fs mount; do
    _got=$(( $(cat "/sys/class/block/$(basename "$(partdev "$n")")/size" 2>/dev/null || echo 0) / 2048 ))
    case "$size" in
      rest) _want=$REST_MIN_MIB ;;
      *K) _want=$(( ${size%K} / 1024 )) ;;
      *M) _want=${size%M} ;;
      *G) _want=$(( ${size%G} * 1024 )) ;;
      *T) _want=$(( ${size%T} * 1024 * 1024 )) ;;
      *) _want=0 ;;
    esac
    if [ "$_got" -lt "$_want" ]; then
      DISK_ERROR="partition $n ($mount) came out ${_got} MiB, the layout asks for $size: the disk $P_DISK (${_disk_mib} MiB) is too small for the group's layout"
      return 1
    fi
  done < "$PARTS"
}

# update-grub names the root file system by UUID only when /dev/disk/by-uuid has it, and otherwise by its device
# name here, which the installed OS may not share. udev makes those links; the installer has no udev.
link_by_uuid() {
  mkdir -p /dev/disk/by-uuid && ln -sf "$1" "/dev/disk/by-uuid/$2"
}

make_filesystems() {
  while read -r n size fs mount; do
    dev="$(partdev "$n")"
    label="$(part_label "$n" "$mount" "$fs")"
    case "$fs" in
      ext4) uuid="$(cat /proc/sys/kernel/random/uuid)" && mkfs.ext4 -q -F -L "$label" -U "$uuid" "$dev" && link_by_uuid "$dev" "$uuid" ;;
      vfat) mkfs.vfat -n "$label" "$dev" > /dev/null ;;
      swap) mkswap -L "$label" "$dev" > /dev/null ;;
    esac || { DISK_ERROR="mkfs $fs on $dev failed"; return 1; }
    say "mkfs $fs $dev label=$label"
  done < "$PARTS"
}

# Root first, then the others, shallowest first, so /boot is mounted before /boot/efi.
mount_target() {
  root_n="$(awk '$4 == "/" { print $1 }' "$PARTS")"
  mount -t ext4 "$(partdev "$root_n")" "$TARGET" || { DISK_ERROR="mounting the root file system failed"; return 1; }
  echo "$TARGET" > /run/mounted
  awk '$3 != "swap" && $4 != "/" { n = split($4, a, "/"); print n, $1, $3, $4 }' "$PARTS" | sort -n > /run/mount-order
  while read -r _depth n fs mount; do
    mkdir -p "$TARGET$mount"
    mount -t "$fs" "$(partdev "$n")" "$TARGET$mount" || { DISK_ERROR="mounting $mount failed"; return 1; }
    echo "$TARGET$mount" >> /run/mounted
  done < /run/mount-order
}

unmount_target() {
  [ -f /run/mounted ] || return 0
  sort -r /run/mounted | while read -r m; do umount "$m" || umount -l "$m"; done
  rm -f /run/mounted
}

# /etc/fstab by label: the device names of the installed OS need not match the installer's.
write_fstab() {
  {
    echo "# Written by the rackseed installer."
    while read -r n size fs mount; do
      label="$(part_label "$n" "$mount" "$fs")"
      case "$fs:$mount" in
        ext4:/) echo "LABEL=$label / ext4 errors=remount-ro 0 1" ;;
        swap:*) echo "LABEL=$label none swap sw 0 0" ;;
        vfat:*) echo "LABEL=$label $mount vfat umask=0077 0 2" ;;
        *) echo "LABEL=$label $mount $fs defaults 0 2" ;;
      esac
    done < "$PARTS"
  } > "$TARGET/etc/fstab"
}
