# The install plan: fetched once with the node token (the server refuses a second fetch), then read line by
# line into variables. Values are only ever used as quoted words, never evaluated; each one is checked again
# here, because the installer writes to a disk with them.

PLAN=/run/plan
PARTS=/run/plan-parts
AUTHORIZED=/run/plan-authorized-keys

# plan_word VALUE: one word of URL-safe characters (no whitespace, quotes, $, backticks or ;).
plan_word() {
  case "$1" in
    ''|*[!A-Za-z0-9._:/@%?=\&+~,-]*) return 1 ;;
  esac
  return 0
}

# plan_need KEY VALUE word|line: the key was present, and (for words) well-formed.
plan_need() {
  [ -n "$2" ] || { PLAN_ERROR="the plan has no $1 line"; return 1; }
  [ "$3" = line ] || plan_word "$2" || { PLAN_ERROR="the plan's $1 value is malformed"; return 1; }
}

# The server spends the single-use token only when it serves the plan: a server that cannot be reached (restarting)
# is asked again for about five minutes; one that answers with an error (refused, already fetched) is final.
fetch_plan() {
  _i=0
  _wait=2
  while :; do
    if timeout 60 wget -q -O "$PLAN" --header "Authorization: Bearer $TOKEN" "$SERVER/node/v1/plan" 2> /run/plan.err; then
      read_plan "$PLAN"
      return
    fi
    _i=$((_i + 1))
    if grep -q 'server returned error' /run/plan.err || [ $_i -ge "${FINAL_REPORT_TRIES:-32}" ]; then
      PLAN_ERROR="could not fetch the install plan from $SERVER: $(tail -n 1 /run/plan.err | tr -d '\000-\037') (refused, already fetched, or unreachable; the server log says which)"
      return 1
    fi
    say "the install plan could not be fetched ($(tail -n 1 /run/plan.err | tr -d '\000-\037')): trying again in $_wait s"
    sleep $_wait
    [ $_wait -ge 10 ] || _wait=$((_wait + 2))
  done
}

read_plan() {
  : > "$PARTS"
  : > "$AUTHORIZED"
  _end=0
  P_HOSTNAME='' P_MAC='' P_DISK='' P_TABLE='' P_IMAGE='' P_TORRENT_URL='' P_HTTP_URL='' P_SHA256='' P_SIZE=''
  P_HOSTKEY_B64='' P_HOSTPUB='' P_BOOT='' P_KERNEL_ARGS='' P_BOOTED_URL='' P_CALLBACK_TOKEN='' P_ACTION=install P_MODE='' P_REPORT_TOKEN=''
  while read -r key value; do
    case "$key" in
      ''|'#'*) ;;
      version) [ "$value" = 1 ] || { PLAN_ERROR="plan version $value is not 1"; return 1; } ;;
      action) P_ACTION="$value" ;;
      mode) P_MODE="$value" ;;
      report_token) P_REPORT_TOKEN="$value" ;;
      hostname) P_HOSTNAME="$value" ;;
      net_mac) P_MAC="$value" ;;
      disk) P_DISK="$value" ;;
      table) P_TABLE="$value" ;;
      part) printf '%s\n' "$value" >> "$PARTS" ;;
      image) P_IMAGE="$value" ;;
      torrent_url) P_TORRENT_URL="$value" ;;
      http_url) P_HTTP_URL="$value" ;;
      sha256) P_SHA256="$value" ;;
      size) P_SIZE="$value" ;;
      report_url) REPORT_URL="$value" ;;
      ssh_host_key) P_HOSTKEY_B64="${value#ed25519 }" ;;
      ssh_host_pub) P_HOSTPUB="${value#ed25519 }" ;;
      authorized_key) printf '%s\n' "$value" >> "$AUTHORIZED" ;;
      installed_boot) P_BOOT="$value" ;;
      kernel_args) P_KERNEL_ARGS="$value" ;;
      booted_url) P_BOOTED_URL="$value" ;;
      callback_token) P_CALLBACK_TOKEN="$value" ;;
      end) _end=1 ;;
      *) say "plan: ignoring unknown key $key" ;;
    esac
  done < "$1"
  [ "$_end" = 1 ] || { PLAN_ERROR="the plan is truncated (no end line)"; return 1; }
  case "$P_ACTION" in
    install) ;;
    wipe)
      # A wipe plan: the mode and where to report, nothing else is needed (or sent).
      plan_need hostname "$P_HOSTNAME" word && plan_need mode "$P_MODE" word || return 1
      [ -z "$P_REPORT_TOKEN" ] || plan_word "$P_REPORT_TOKEN" || { PLAN_ERROR="the plan's report_token value is malformed"; return 1; }
      case "$P_MODE" in quick|full) ;; *) PLAN_ERROR="wipe mode $P_MODE is not quick or full"; return 1 ;; esac
      say "plan: wipe every disk of $P_HOSTNAME ($P_MODE)"
      return 0
      ;;
    *) PLAN_ERROR="the plan's action $P_ACTION is not install or wipe"; return 1 ;;
  esac
  plan_need hostname "$P_HOSTNAME" word && plan_need net_mac "$P_MAC" word && plan_need disk "$P_DISK" word &&
    plan_need table "$P_TABLE" word && plan_need image "$P_IMAGE" word && plan_need torrent_url "$P_TORRENT_URL" word &&
    plan_need http_url "$P_HTTP_URL" word && plan_need sha256 "$P_SHA256" word && plan_need size "$P_SIZE" word &&
    plan_need ssh_host_key "$P_HOSTKEY_B64" word && plan_need ssh_host_pub "$P_HOSTPUB" line &&
    plan_need installed_boot "$P_BOOT" word || return 1
  # The first-boot callback is optional, but it comes whole: a URL without its token (or the reverse) is refused.
  if [ -n "$P_BOOTED_URL$P_CALLBACK_TOKEN" ]; then
    plan_need booted_url "$P_BOOTED_URL" word && plan_need callback_token "$P_CALLBACK_TOKEN" word || return 1
  fi
  case "$P_DISK" in /dev/*) ;; *) PLAN_ERROR="disk $P_DISK is not below /dev"; return 1 ;; esac
  case "$P_DISK" in *..*) PLAN_ERROR="disk $P_DISK is not a plain path"; return 1 ;; esac
  case "$P_TABLE" in gpt|dos) ;; *) PLAN_ERROR="table $P_TABLE is not gpt or dos"; return 1 ;; esac
  case "$P_BOOT" in kernel|local) ;; *) PLAN_ERROR="installed_boot $P_BOOT is not kernel or local"; return 1 ;; esac
  # Written into GRUB's defaults, a file its scripts source: only characters that mean nothing to a shell.
  case "$P_KERNEL_ARGS" in *[!A-Za-z0-9._:/@%=+~,\ -]*) PLAN_ERROR="the plan's kernel_args value is malformed"; return 1 ;; esac
  case "$P_SIZE" in *[!0-9]*) PLAN_ERROR="size $P_SIZE is not a number"; return 1 ;; esac
  [ "${#P_SHA256}" = 64 ] || { PLAN_ERROR="sha256 is not 64 hex digits"; return 1; }
  [ -s "$PARTS" ] || { PLAN_ERROR="the plan has no partitions"; return 1; }
  while read -r n size fs mount; do
    case "$n" in ''|*[!0-9]*) PLAN_ERROR="partition number $n"; return 1 ;; esac
    case "$fs" in ext4|vfat|swap) ;; *) PLAN_ERROR="partition $n: the installer cannot make $fs"; return 1 ;; esac
    case "$mount" in swap|/|/*) ;; *) PLAN_ERROR="partition $n: mount point $mount"; return 1 ;; esac
    case "$mount" in *..*|*[!A-Za-z0-9._/-]*) [ "$mount" = swap ] || { PLAN_ERROR="partition $n: mount point $mount"; return 1; } ;; esac
    case "$size" in rest|[1-9]*[KMGT]) ;; *) PLAN_ERROR="partition $n: size $size"; return 1 ;; esac
  done < "$PARTS"
  say "plan: $P_HOSTNAME image=$P_IMAGE disk=$P_DISK table=$P_TABLE boot=$P_BOOT size=$P_SIZE"
}
