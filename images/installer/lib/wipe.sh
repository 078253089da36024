# `rackseed wipe`: erase every disk of the machine, check that it is erased, and say which disks it was. Nothing here
# is told by the plan which disks to take: a machine being retired or handed back is erased whole, whatever its
# group's layout names. Removable and read-only devices are left alone (a USB stick, a virtual CD), and so are the
# kernel's virtual block devices.

WIPE_SYS=${WIPE_SYS:-/sys/block}
WIPE_DEV=${WIPE_DEV:-/dev}
WIPEFS=${WIPEFS:-/usr/sbin/wipefs}
# quick: this much at each end of every disk is zeroed (partition tables, RAID and LVM labels, boot code live there).
WIPE_EDGE_BYTES=$((16 * 1048576))
# full: written and read back in pieces of this size, each one reported.
WIPE_CHUNK_BYTES=${WIPE_CHUNK_BYTES:-$((4096 * 1048576))}
# The disks found, one "name bytes" line each.
WIPE_LIST=${WIPE_LIST:-/run/wipe-disks}

# Fills WIPE_LIST with the machine's disks; fails when there are none (a wipe that erased nothing is no wipe).
find_wipe_disks() {
  : > "$WIPE_LIST"
  for d in "$WIPE_SYS"/*; do
    n="${d##*/}"
    case "$n" in
      loop*|ram*|zram*|sr*|fd*|dm-*|md*|nbd*|mmcblk*boot*|mmcblk*rpmb) continue ;;
    esac
    [ -r "$d/size" ] || continue
    if [ "$(cat "$d/removable" 2>/dev/null || echo 0)" != 0 ]; then say "wipe: leaving removable $n alone"; continue; fi
    if [ "$(cat "$d/ro" 2>/dev/null || echo 0)" != 0 ]; then say "wipe: leaving read-only $n alone"; continue; fi
    _sectors="$(cat "$d/size")"
    case "$_sectors" in ''|*[!0-9]*) continue ;; esac
    [ "$_sectors" -gt 0 ] || continue
    echo "$n $((_sectors * 512))" >> "$WIPE_LIST"
  done
  if [ ! -s "$WIPE_LIST" ]; then
    WIPE_ERROR="no disk to wipe: the kernel sees none (is its storage driver in the installer? rackseed installer build --recipe-dir)"
    return 1
  fi
  say "wipe: disks $(tr '\n' ' ' < "$WIPE_LIST")"
}

# zero_range DEV OFFSET LENGTH: writes zeros over LENGTH bytes from OFFSET, through to the disk.
zero_range() {
  dd if=/dev/zero of="$1" bs=1M seek="$2" count="$3" oflag=seek_bytes iflag=count_bytes conv=notrunc,fsync 2>/run/wipe-dd.err ||
    { WIPE_ERROR="writing zeros to $1 at byte $2 failed: $(tail -n 1 /run/wipe-dd.err | tr -d '\000-\037')"; return 1; }
}

# nonzero_in DEV OFFSET LENGTH: prints how many bytes of the range are not zero, read from the disk (not the cache).
nonzero_in() {
  dd if="$1" bs=1M skip="$2" count="$3" iflag=skip_bytes,count_bytes 2>/dev/null | tr -d '\000' | wc -c
}

# Drops what the kernel caches of the disk, so the check reads what is on it.
flush_disk() {
  sync
  blockdev --flushbufs "$1" 2>/dev/null || true
}

# wipe_check_range DEV OFFSET LENGTH
wipe_check_range() {
  _left="$(nonzero_in "$1" "$2" "$3")"
  [ "$_left" = 0 ] || { WIPE_ERROR="$1 still holds $_left non-zero bytes between byte $2 and byte $(($2 + $3)) after the wipe"; return 1; }
}

# The partitions of disk NAME, as their device names.
disk_partitions() {
  for p in "$WIPE_SYS/$1/$1"*; do
    [ -e "$p/partition" ] && echo "${p##*/}"
  done
}

# quick_wipe NAME BYTES: the signatures of every partition, then of the disk (both GPT copies, the protective MBR),
# a discard where the disk takes one, and zeros over both ends.
quick_wipe() {
  _dev="$WIPE_DEV/$1"
  for p in $(disk_partitions "$1"); do
    "$WIPEFS" -a -q "$WIPE_DEV/$p" 2>/run/wipe-wipefs.err ||
      { WIPE_ERROR="wipefs on $WIPE_DEV/$p failed: $(tail -n 1 /run/wipe-wipefs.err | tr -d '\000-\037')"; return 1; }
  done
  "$WIPEFS" -a -q "$_dev" 2>/run/wipe-wipefs.err ||
    { WIPE_ERROR="wipefs on $_dev failed: $(tail -n 1 /run/wipe-wipefs.err | tr -d '\000-\037')"; return 1; }
  # An SSD or a thin volume forgets its blocks; a disk that cannot discard is erased by the writes below all the same.
  blkdiscard "$_dev" 2>/dev/null && say "wipe: $1 discarded"
  _edge=$WIPE_EDGE_BYTES
  [ "$2" -ge $((2 * _edge)) ] || _edge=$(($2 / 2))
  zero_range "$_dev" 0 "$_edge" || return 1
  zero_range "$_dev" $(($2 - _edge)) "$_edge" || return 1
  blockdev --rereadpt "$_dev" 2>/dev/null || true
  flush_disk "$_dev"
  _left="$("$WIPEFS" "$_dev" 2>/dev/null)"
  [ -z "$_left" ] || { WIPE_ERROR="$_dev still shows signatures after the wipe: $(echo "$_left" | tail -n +2 | tr '\n' ';' | tr -d '\000-\037')"; return 1; }
  wipe_check_range "$_dev" 0 "$_edge" && wipe_check_range "$_dev" $(($2 - _edge)) "$_edge"
}

# full_wipe NAME BYTES: zeros over every byte, then every byte read back; progress reported after each piece.
full_wipe() {
  _dev="$WIPE_DEV/$1"
  for _pass in write check; do
    _off=0
    while [ "$_off" -lt "$2" ]; do
      _len=$WIPE_CHUNK_BYTES
      [ $((_off + _len)) -le "$2" ] || _len=$(($2 - _off))
      if [ "$_pass" = write ]; then zero_range "$_dev" "$_off" "$_len" || return 1; else wipe_check_range "$_dev" "$_off" "$_len" || return 1; fi
      _off=$((_off + _len))
      report_stage wipe "{\"disk\":\"$1\",\"pass\":\"$_pass\",\"bytes\":$_off,\"size\":$2}"
    done
    [ "$_pass" = write ] && flush_disk "$_dev"
  done
  blockdev --rereadpt "$_dev" 2>/dev/null || true
}

# wipe_all MODE: every disk of WIPE_LIST; on success WIPED_JSON holds the report's disks list.
wipe_all() {
  WIPED_JSON=""
  # The list on its own descriptor: nothing in the loop may read the next disk's line from standard input.
  while read -r _name _bytes <&3; do
    say "wipe: $1 wipe of $_name ($_bytes bytes)"
    report_stage wipe "{\"disk\":\"$_name\",\"pass\":\"start\",\"bytes\":0,\"size\":$_bytes}"
    case "$1" in
      quick) quick_wipe "$_name" "$_bytes" || return 1 ;;
      full) full_wipe "$_name" "$_bytes" || return 1 ;;
      *) WIPE_ERROR="unknown wipe mode $1"; return 1 ;;
    esac
    say "wipe: $_name erased and checked"
    WIPED_JSON="$WIPED_JSON${WIPED_JSON:+,}{\"name\":\"$_name\",\"bytes\":$_bytes}"
  done 3< "$WIPE_LIST"
}
