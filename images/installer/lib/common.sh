# Console markers, reports to the server, and the two ways the installer ends when something fails.

# Debian's busybox-static runs its own applets before anything on PATH (a "standalone" shell), so the GNU tools
# the installer depends on are called by their full paths.
GNU_TAR=/usr/bin/tar
GNU_SHA256SUM=/usr/bin/sha256sum

say() { echo "RACKSEED-INSTALLER: $*"; }

# JSON string contents: no control characters, quotes and backslashes escaped.
json_escape() {
  printf '%s' "$1" | tr -d '\000-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'
}

# report_json BODY [TRIES]: POSTs one JSON report. Three tries by default (a lost progress report should not cost
# an install); the reports that end an install (installed, failed) pass more, so that a server restarting for a few
# minutes does not turn a finished install into a powered-off node. The wait grows from 2 to 10 s.
report_json() {
  _i=0
  _tries=${2:-3}
  _wait=2
  while [ $_i -lt "$_tries" ]; do
    # Not wget -T: busybox 1.35's wget segfaults with it; timeout(1) bounds it instead.
    if timeout 20 wget -q -O /dev/null --header "Authorization: Bearer $TOKEN" --header "Content-Type: application/json" \
      --post-data "$1" "${REPORT_URL:-$SERVER/node/v1/report}"; then
      return 0
    fi
    _i=$((_i + 1))
    [ $_i -lt "$_tries" ] || break
    sleep $_wait
    [ $_wait -ge 10 ] || _wait=$((_wait + 2))
  done
  say "report failed: $1"
  return 1
}

# Tries for the reports that end an install: about five minutes.
FINAL_REPORT_TRIES=${FINAL_REPORT_TRIES:-32}

# report_stage NAME [DETAIL-JSON-OBJECT]
report_stage() {
  say "$1"
  if [ -n "${2:-}" ]; then
    report_json "{\"stage\":\"$1\",\"detail\":$2}" || true
  else
    report_json "{\"stage\":\"$1\"}" || true
  fi
}

halt_forever() {
  # poweroff -f does not return; if it ever did, exiting PID 1 would panic the kernel.
  poweroff -f
  while :; do sleep 3600; done
}

fail() {
  say "FAILED stage=$STAGE: $1"
  stop_seeding 2>/dev/null
  report_json "{\"failed\":\"$(json_escape "$1")\",\"stage\":\"$STAGE\"}" "$FINAL_REPORT_TRIES"
  unmount_target 2>/dev/null
  sync
  say "halt"
  halt_forever
}

read_cmdline() {
  for word in $(cat /proc/cmdline); do
    case "$word" in
      rackseed.server=*) SERVER="${word#*=}" ;;
      rackseed.node=*) NODE="${word#*=}" ;;
      rackseed.mac=*) BOOT_MAC="${word#*=}" ;;
      rackseed.token=*) TOKEN="${word#*=}" ;;
      rackseed.stall=*) SWARM_STALL="${word#*=}" ;;
    esac
  done
  say "server=${SERVER:-unset} node=${NODE:-unset} mac=${BOOT_MAC:-unset}"
  [ -n "${SERVER:-}" ] && [ -n "${NODE:-}" ] && [ -n "${TOKEN:-}" ]
}

load_modules() {
  while read -r ko; do
    insmod "$ko" 2>/dev/null || say "insmod $ko failed"
  done < /etc/rackseed-modules
}

# The interface with the MAC iPXE booted from, else the first one that gets a lease. NIC drivers bind one after
# another: with the boot MAC known, its interface is waited for (up to 10 s) even when others are already there, as
# a lease on another network would install the node from the wrong server or none.
network_up() {
  ip link set lo up
  _mac="$(echo "${BOOT_MAC:-}" | tr 'A-F' 'a-f')"
  _tries=0
  while [ $_tries -lt 50 ]; do
    _boot=""
    _ifs=""
    for d in /sys/class/net/*; do
      n="${d##*/}"
      [ "$n" = lo ] && continue
      [ -e "$d" ] || continue
      if [ -n "$_mac" ] && [ "$(cat "$d/address")" = "$_mac" ]; then _boot="$n"; else _ifs="$_ifs $n"; fi
    done
    [ -n "$_boot" ] && break
    [ -z "$_mac" ] && [ -n "$_ifs" ] && break
    _tries=$((_tries + 1))
    usleep 200000
  done
  [ -n "$_mac" ] && [ -z "$_boot" ] && say "no interface has the boot MAC $_mac; trying the others"
  _ifs="$_boot $_ifs"
  for n in $_ifs; do
    ip link set "$n" up
    if udhcpc -i "$n" -n -q -t 10 -s "${UDHCPC_SCRIPT:-/lib/rackseed/udhcpc.script}"; then
      IF="$n"
      IP="$(cat /run/rackseed-ip)"
      say "lease $IP on $IF"
      return 0
    fi
  done
  return 1
}
