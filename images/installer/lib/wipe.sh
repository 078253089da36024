# `rackseed wipe`: erase every disk of the machine, check that it is erased, and say which disks it was (with their
# model, serial and WWID) and which block devices it left alone and why. Nothing here is told by the plan which disks
# to take: a machine being retired or handed back is erased whole, whatever its group's layout names. Removable and
# read-only devices are left alone (a USB stick, a virtual CD, a write-protected SD module), and so are the kernel's
# virtual block devices and the hidden per-controller paths of multipath NVMe namespaces.

WIPE_SYS=${WIPE_SYS:-/sys/block}
WIPE_DEV=${WIPE_DEV:-/dev}
WIPEFS=${WIPEFS:-/usr/sbin/wipefs}
# Scratch files (the initramfs's /run; a test points it elsewhere).
WIPE_TMP=${WIPE_TMP:-/run}
# How a device node is recognised: a block device (a test's disks are regular files).
WIPE_NODE_TEST=${WIPE_NODE_TEST:--b}
# quick: this much at each end of every disk is zeroed (partition tables, RAID and LVM labels, boot code live there).
WIPE_EDGE_BYTES=$((16 * 1048576))
# full: written and read back in pieces of this size, each one reported.
WIPE_CHUNK_BYTES=${WIPE_CHUNK_BYTES:-$((4096 * 1048576))}
# At most this many disks are wiped at once (0: all of them).
WIPE_PARALLEL=${WIPE_PARALLEL:-0}
# Storage drivers (NVMe namespace scans, SAS and RAID host scans) add disks after their module loaded: the list of
# block devices must stay the same this many seconds, and at least WIPE_SETTLE_MIN have passed, before it is taken.
WIPE_SETTLE_STABLE=${WIPE_SETTLE_STABLE:-5}
WIPE_SETTLE_MIN=${WIPE_SETTLE_MIN:-10}
WIPE_SETTLE_MAX=${WIPE_SETTLE_MAX:-120}
# The devices left alone, as JSON objects (the disks found are in $WIPE_TMP/wipe-disks, one "name bytes" line each).
WIPE_SKIPPED_JSON=""

wait_for_disks() {
  _prev=""
  _stable=0
  _t=0
  while [ "$_t" -lt "$WIPE_SETTLE_MAX" ]; do
    _now="$(ls "$WIPE_SYS" 2>/dev/null | tr '\n' ' ')"
    if [ "$_now" = "$_prev" ]; then _stable=$((_stable + 1)); else _stable=0; _prev="$_now"; fi
    [ "$_stable" -ge "$WIPE_SETTLE_STABLE" ] && [ "$_t" -ge "$WIPE_SETTLE_MIN" ] && return 0
    sleep 1
    _t=$((_t + 1))
  done
  say "wipe: block devices still appearing after ${WIPE_SETTLE_MAX} s; taking the list as it is"
}

# sysfs_text FILE: a sysfs attribute as one short line, trimmed and escaped for a JSON string ('' when absent).
sysfs_text() {
  [ -r "$1" ] || return 0
  json_escape "$(head -c 128 "$1" 2>/dev/null | tr -d '\000-\037' | sed -e 's/^ *//' -e 's/ *$//')"
}

# skip_device NAME WHY
skip_device() {
  say "wipe: leaving $1 alone ($2)"
  WIPE_SKIPPED_JSON="$WIPE_SKIPPED_JSON${WIPE_SKIPPED_JSON:+,}{\"name\":\"$(json_escape "$1")\",\"why\":\"$2\"}"
}

# The device node of sysfs name NAME (cciss!c0d0 is /dev/cciss/c0d0).
disk_node() {
  echo "$WIPE_DEV/$(echo "$1" | tr '!' '/')"
}

# Fills $WIPE_TMP/wipe-disks with the machine's disks; fails when there are none (a wipe that erased nothing is no wipe).
find_wipe_disks() {
  wait_for_disks
  : > "$WIPE_TMP/wipe-disks"
  WIPE_SKIPPED_JSON=""
  for d in "$WIPE_SYS"/*; do
    n="${d##*/}"
    case "$n" in
      loop*|ram*|zram*|sr*|fd*|dm-*|md*|nbd*|mmcblk*boot*|mmcblk*rpmb) continue ;;
    esac
    [ -r "$d/size" ] || continue
    # A multipath NVMe namespace's per-controller paths (nvme0c0n1): the namespace itself (nvme0n1) is wiped.
    if [ "$(cat "$d/hidden" 2>/dev/null || echo 0)" = 1 ]; then continue; fi
    if [ "$(cat "$d/removable" 2>/dev/null || echo 0)" != 0 ]; then skip_device "$n" removable; continue; fi
    if [ "$(cat "$d/ro" 2>/dev/null || echo 0)" != 0 ]; then skip_device "$n" read-only; continue; fi
    _sectors="$(cat "$d/size")"
    case "$_sectors" in ''|*[!0-9]*) continue ;; esac
    [ "$_sectors" -gt 0 ] || continue
    # Never write to a path that is not the disk: dd would create a file of the disk's size in the initramfs.
    if [ ! "$WIPE_NODE_TEST" "$(disk_node "$n")" ]; then skip_device "$n" "no device node"; continue; fi
    echo "$n $((_sectors * 512))" >> "$WIPE_TMP/wipe-disks"
  done
  if [ ! -s "$WIPE_TMP/wipe-disks" ]; then
    WIPE_ERROR="no disk to wipe: the kernel sees none (is its storage driver in the installer? rackseed installer build --recipe-dir)"
    return 1
  fi
  say "wipe: disks $(tr '\n' ' ' < "$WIPE_TMP/wipe-disks")"
}

# still_a_disk DEV: the disk's device node is still there. A disk can go away during a wipe (a failing disk dropped by
# its controller, a SAS link reset): dd would then create a regular file at its path, in the initramfs's RAM, write
# the zeros there and read them back, and a disk that was never erased would pass for erased and checked.
still_a_disk() {
  [ "$WIPE_NODE_TEST" "$1" ] || { WIPE_ERROR="$1 is no longer a disk (its device node is gone or is not a device): the disk went away during the wipe"; return 1; }
}

# zero_range DEV OFFSET LENGTH: writes zeros over LENGTH bytes from OFFSET, through to the disk.
zero_range() {
  still_a_disk "$1" || return 1
  dd if=/dev/zero of="$1" bs=1M seek="$2" count="$3" oflag=seek_bytes iflag=count_bytes conv=notrunc,fsync 2>"$WIPE_TMP/wipe-dd.err" ||
    { WIPE_ERROR="writing zeros to $1 at byte $2 failed: $(tail -n 1 "$WIPE_TMP/wipe-dd.err" | tr -d '\000-\037')"; return 1; }
}

# read_back DEV OFFSET LENGTH: reads the range from the disk and sets READ_NONZERO to how many of its bytes are not
# zero. A read that fails or comes back short is an error, never "all zeros".
read_back() {
  still_a_disk "$1" || return 1
  _fifo="$WIPE_TMP/wipe-read.fifo"
  rm -f "$_fifo"
  mkfifo "$_fifo" || { WIPE_ERROR="cannot make $_fifo"; return 1; }
  wc -c < "$_fifo" > "$WIPE_TMP/wipe-read.total" &
  _counter=$!
  { dd if="$1" bs=1M skip="$2" count="$3" iflag=skip_bytes,count_bytes 2>"$WIPE_TMP/wipe-read.err"; echo $? > "$WIPE_TMP/wipe-read.rc"; } |
    tee "$_fifo" | tr -d '\000' | wc -c > "$WIPE_TMP/wipe-read.nonzero"
  wait "$_counter"
  rm -f "$_fifo"
  if [ "$(cat "$WIPE_TMP/wipe-read.rc")" != 0 ]; then
    WIPE_ERROR="reading $1 back at byte $2 failed: $(tail -n 1 "$WIPE_TMP/wipe-read.err" | tr -d '\000-\037')"
    return 1
  fi
  _total="$(tr -d ' ' < "$WIPE_TMP/wipe-read.total")"
  [ "$_total" = "$3" ] || { WIPE_ERROR="reading $1 back at byte $2 gave $_total of $3 bytes (the disk is shorter than the kernel said?)"; return 1; }
  READ_NONZERO="$(tr -d ' ' < "$WIPE_TMP/wipe-read.nonzero")"
}

# Drops what the kernel caches of the disk, so the check reads what is on it.
flush_disk() {
  sync
  blockdev --flushbufs "$1" 2>/dev/null || true
}

# wipe_check_range DEV OFFSET LENGTH
wipe_check_range() {
  read_back "$1" "$2" "$3" || return 1
  [ "$READ_NONZERO" = 0 ] || { WIPE_ERROR="$1 still holds $READ_NONZERO non-zero bytes between byte $2 and byte $(($2 + $3)) after the wipe"; return 1; }
}

# The partitions of disk NAME, as their sysfs names.
disk_partitions() {
  for p in "$WIPE_SYS/$1/$1"*; do
    [ -e "$p/partition" ] && echo "${p##*/}"
  done
}

# quick_wipe NAME BYTES: the signatures of every partition, then of the disk (both GPT copies, the protective MBR),
# a discard where the disk takes one, and zeros over both ends.
quick_wipe() {
  _dev="$(disk_node "$1")"
  for p in $(disk_partitions "$1"); do
    "$WIPEFS" -a -q "$(disk_node "$p")" 2>"$WIPE_TMP/wipe-wipefs.err" ||
      { WIPE_ERROR="wipefs on $(disk_node "$p") failed: $(tail -n 1 "$WIPE_TMP/wipe-wipefs.err" | tr -d '\000-\037')"; return 1; }
  done
  "$WIPEFS" -a -q "$_dev" 2>"$WIPE_TMP/wipe-wipefs.err" ||
    { WIPE_ERROR="wipefs on $_dev failed: $(tail -n 1 "$WIPE_TMP/wipe-wipefs.err" | tr -d '\000-\037')"; return 1; }
  # An SSD or a thin volume forgets its blocks; a disk that cannot discard is erased by the writes below all the same.
  blkdiscard "$_dev" 2>/dev/null && say "wipe: $1 discarded"
  _edge=$WIPE_EDGE_BYTES
  [ "$2" -ge $((2 * _edge)) ] || _edge=$(($2 / 2))
  zero_range "$_dev" 0 "$_edge" || return 1
  zero_range "$_dev" $(($2 - _edge)) "$_edge" || return 1
  blockdev --rereadpt "$_dev" 2>/dev/null || true
  flush_disk "$_dev"
  # wipefs without -a lists what it finds; it must run (a probe that fails says nothing about the disk).
  "$WIPEFS" "$_dev" > "$WIPE_TMP/wipe-left" 2>"$WIPE_TMP/wipe-wipefs.err" ||
    { WIPE_ERROR="wipefs could not check $_dev: $(tail -n 1 "$WIPE_TMP/wipe-wipefs.err" | tr -d '\000-\037')"; return 1; }
  [ ! -s "$WIPE_TMP/wipe-left" ] || { WIPE_ERROR="$_dev still shows signatures after the wipe: $(tail -n +2 "$WIPE_TMP/wipe-left" | tr '\n' ';' | tr -d '\000-\037')"; return 1; }
  wipe_check_range "$_dev" 0 "$_edge" && wipe_check_range "$_dev" $(($2 - _edge)) "$_edge"
}

# full_wipe NAME BYTES: zeros over every byte, then every byte read back; progress reported after each piece.
full_wipe() {
  _dev="$(disk_node "$1")"
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

# disk_json NAME BYTES: the report's entry for a disk, with what identifies it beyond its kernel name.
disk_json() {
  _s="$WIPE_SYS/$1"
  _wwid="$(sysfs_text "$_s/wwid")"
  [ -n "$_wwid" ] || _wwid="$(sysfs_text "$_s/device/wwid")"
  _serial="$(sysfs_text "$_s/device/serial")"
  [ -n "$_serial" ] || _serial="$(sysfs_text "$_s/serial")"
  printf '{"name":"%s","bytes":%s,"model":"%s","serial":"%s","wwid":"%s"}' "$(json_escape "$1")" "$2" \
    "$(sysfs_text "$_s/device/model")" "$_serial" "$_wwid"
}

# wipe_all MODE: every disk found, all at the same time; on success WIPED_JSON holds the report's disks list.
# Each disk is its own background job with its own scratch directory: a full wipe is bound by each disk's own speed,
# so a node with eight disks takes as long as its slowest disk, not eight times that. A disk that fails does not stop
# the others: the error names every disk that failed and every disk that was erased. At most WIPE_PARALLEL disks at
# once (0: no limit). The failed disks' names come first, then why, then the erased ones: the server keeps the first
# 500 characters of a reason, and on a large shelf the names of the disks that need a look must be the part kept.
wipe_all() {
  WIPED_JSON=""
  case "$1" in
    quick|full) ;;
    *) WIPE_ERROR="unknown wipe mode $1"; return 1 ;;
  esac
  _jobs=0
  _waiting=""
  _running=0
  # The list on its own descriptor: nothing in the loop may read the next disk's line from standard input.
  while read -r _name _bytes <&3; do
    _jobs=$((_jobs + 1))
    _job="$WIPE_TMP/wipe-job-$_jobs"
    rm -rf "$_job"
    mkdir -p "$_job" || { WIPE_ERROR="cannot make $_job"; return 1; }
    echo "$_name $_bytes" > "$_job/disk"
    if [ "$WIPE_PARALLEL" -gt 0 ] && [ "$_running" -ge "$WIPE_PARALLEL" ]; then
      # The oldest job first: with disks of one size it is the one that ends first.
      _oldest="${_waiting%% *}"
      wait "$_oldest"
      _waiting="${_waiting#"$_oldest"}"
      _waiting="${_waiting# }"
      _running=$((_running - 1))
    fi
    say "wipe: $1 wipe of $_name ($_bytes bytes)"
    report_stage wipe "{\"disk\":\"$_name\",\"pass\":\"start\",\"bytes\":0,\"size\":$_bytes}"
    (
      WIPE_TMP="$_job"
      if "${1}_wipe" "$_name" "$_bytes"; then : > "$_job/ok"; else printf '%s\n' "${WIPE_ERROR:-the wipe of $_name failed}" > "$_job/error"; fi
    ) 3<&- &
    _waiting="${_waiting:+$_waiting }$!"
    _running=$((_running + 1))
  done 3< "$WIPE_TMP/wipe-disks"
  for _pid in $_waiting; do wait "$_pid"; done
  _failed=""
  _failed_names=""
  _erased=""
  _i=0
  while [ "$_i" -lt "$_jobs" ]; do
    _i=$((_i + 1))
    _job="$WIPE_TMP/wipe-job-$_i"
    read -r _name _bytes < "$_job/disk"
    if [ -e "$_job/ok" ]; then
      say "wipe: $_name erased and checked"
      WIPED_JSON="$WIPED_JSON${WIPED_JSON:+,}$(disk_json "$_name" "$_bytes")"
      _erased="$_erased${_erased:+, }$_name"
    else
      _failed_names="$_failed_names${_failed_names:+, }$_name"
      if [ -s "$_job/error" ]; then
        _failed="$_failed${_failed:+; }$(head -n 1 "$_job/error")"
      else
        _failed="$_failed${_failed:+; }the wipe of $_name stopped without a result"
      fi
    fi
    rm -rf "$_job"
  done
  [ -z "$_failed" ] && return 0
  WIPE_ERROR="wipe failed on $_failed_names: $_failed (erased and checked: ${_erased:-none})"
  return 1
}
