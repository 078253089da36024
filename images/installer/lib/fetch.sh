# The image: from the swarm with aria2c (the torrent's web seed is rackseed itself, so this works without any
# peer), plain HTTP when the swarm stalls, then sha256 and size against the plan, then unpacked. aria2c keeps
# seeding in the background until stop_seeding, right before the reboot.

DL_DIR="$TARGET/.rackseed-download"
RPC=http://127.0.0.1:6800/jsonrpc
ARIA_PID=''

image_file() { echo "$DL_DIR/${P_HTTP_URL##*/}"; }

# One aria2c status field from a tellStatus answer (all of its values are JSON strings).
rpc_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

# tellActive, not tellStatus of a fixed GID: with --follow-torrent=mem the .torrent fetch and the BitTorrent
# download are two downloads with two GIDs, and only the second stays active (downloading, then seeding).
rpc_status() {
  timeout 5 wget -q -O- --post-data \
    '{"jsonrpc":"2.0","id":"s","method":"aria2.tellActive","params":[["completedLength","totalLength","downloadSpeed","uploadSpeed","connections","numSeeders"]]}' \
    "$RPC" 2>/dev/null
}

download_swarm() {
  mkdir -p "$DL_DIR"
  # The flags are the swarm's (test/support/swarm.ts aria2cArgs), plus RPC on loopback for progress.
  aria2c --seed-ratio=0.0 --seed-time=1440 --bt-enable-lpd=false --enable-dht=false --enable-dht6=false \
    --enable-peer-exchange=false --bt-tracker-interval=0 --follow-torrent=mem --check-integrity=true \
    --bt-hash-check-seed=true --file-allocation=none --bt-max-peers=0 --stream-piece-selector=random --listen-port=6881 \
    --on-bt-download-complete=/lib/rackseed/aria2-done.sh --summary-interval=0 --console-log-level=warn \
    --show-console-readout=false --dir="$DL_DIR" \
    --enable-rpc=true --rpc-listen-all=false --rpc-listen-port=6800 \
    "$P_TORRENT_URL" > /run/aria2c.log 2>&1 &
  ARIA_PID=$!
  _last=-1
  _still=0
  _tick=0
  while :; do
    sleep 1
    _tick=$((_tick + 1))
    if [ -s "$DL_DIR/aria2.done" ]; then
      report_progress swarm
      return 0
    fi
    if ! kill -0 "$ARIA_PID" 2>/dev/null; then
      say "aria2c exited: $(tail -n 3 /run/aria2c.log | tr '\n' ' ')"
      SWARM_ERROR="aria2c exited: $(tail -n 1 /run/aria2c.log | tr -d '\000-\037')"
      ARIA_PID=''
      return 1
    fi
    [ $((_tick % 5)) = 0 ] || continue
    report_progress swarm
    if [ "$_done" = "$_last" ]; then _still=$((_still + 5)); else _still=0; _last="$_done"; fi
    if [ "$_still" -ge "${SWARM_STALL:-60}" ]; then
      say "swarm stalled for ${_still}s at $_done bytes"
      SWARM_ERROR="stalled for ${_still}s at $_done bytes"
      return 1
    fi
  done
}

# Reads aria2c's (or the HTTP download's) progress into _done and sends a download stage report.
report_progress() {
  if [ "$1" = swarm ]; then
    _st="$(rpc_status)"
    _done="$(echo "$_st" | rpc_field completedLength)"
    _rate="$(echo "$_st" | rpc_field downloadSpeed)"
    _peers="$(echo "$_st" | rpc_field connections)"
    _up="$(echo "$_st" | rpc_field uploadSpeed)"
  else
    _done="$(stat -c %s "$(image_file)" 2>/dev/null)"
    _rate=$(( (${_done:-0} - ${_prev:-0}) / 5 ))
    _prev="${_done:-0}"
    _peers=0
    _up=0
  fi
  _done="${_done:-0}"
  say "download $1 $_done/$P_SIZE bytes, ${_rate:-0} B/s, ${_peers:-0} peers"
  report_json "{\"stage\":\"download\",\"detail\":{\"source\":\"$1\",\"bytes\":$_done,\"size\":$P_SIZE,\"rate\":${_rate:-0},\"upload_rate\":${_up:-0},\"peers\":${_peers:-0}}}" || true
}

download_http() {
  mkdir -p "$DL_DIR"
  rm -f "$(image_file)"
  wget -q -O "$(image_file)" "$P_HTTP_URL" 2> /run/wget.err &
  _wpid=$!
  _prev=0
  while kill -0 "$_wpid" 2>/dev/null; do
    sleep 5
    kill -0 "$_wpid" 2>/dev/null && report_progress http
  done
  # Why, in the report: a 404, a refused connection, or a full disk (wget's own last line says which).
  wait "$_wpid" || { FETCH_ERROR="HTTP download of $P_HTTP_URL failed: $(tail -n 1 /run/wget.err | tr -d '\000-\037')${SWARM_ERROR:+ (the swarm: $SWARM_ERROR)}"; return 1; }
  report_progress http
}

download_image() {
  if download_swarm; then
    say "downloaded from the swarm; seeding continues"
    return 0
  fi
  stop_seeding
  say "falling back to HTTP"
  report_stage download-http
  download_http
}

verify_image() {
  f="$(image_file)"
  [ -f "$f" ] || { FETCH_ERROR="the downloaded image $f is missing"; return 1; }
  size="$(stat -c %s "$f")"
  [ "$size" = "$P_SIZE" ] || { FETCH_ERROR="image size $size, the plan says $P_SIZE"; return 1; }
  sum="$("$GNU_SHA256SUM" "$f" | cut -d ' ' -f 1)"
  [ "$sum" = "$P_SHA256" ] || { FETCH_ERROR="image sha256 $sum, the plan says $P_SHA256"; return 1; }
  say "verified sha256 $sum ($size bytes)"
}

unpack_image() {
  if ! "$GNU_TAR" --xattrs --xattrs-include='*' --acls --numeric-owner --zstd -xpf "$(image_file)" -C "$TARGET" \
    --exclude=./.rackseed-download > /run/tar.log 2>&1; then
    tail -n 5 /run/tar.log
    # GNU tar's last line is always "Exiting with failure status due to previous errors": the first error says why.
    FETCH_ERROR="tar: $(grep -v -m 1 'Exiting with failure status' /run/tar.log | tr -d '\000-\037')"
    return 1
  fi
  say "unpacked into $TARGET"
}

stop_seeding() {
  [ -n "$ARIA_PID" ] || return 0
  kill "$ARIA_PID" 2>/dev/null
  _k=0
  while kill -0 "$ARIA_PID" 2>/dev/null && [ $_k -lt 50 ]; do usleep 100000; _k=$((_k + 1)); done
  kill -9 "$ARIA_PID" 2>/dev/null
  ARIA_PID=''
  say "seeding stopped"
}

remove_download() {
  rm -rf "$DL_DIR"
}
