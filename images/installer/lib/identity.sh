# What makes the unpacked image this node: host name, fstab, DHCP on the provisioning MAC, the SSH host key the
# server pinned (the image's own keys are removed: every node built from one image would otherwise share them),
# the server's key for root, and a fresh machine-id on first boot.

# own_file PATH: $TARGET/PATH may be written. The image's links are its own: an absolute one (or one climbing out
# with "..") resolves here in the installer, not in the image, so a write through it would miss the node and land in
# the installer. A link at PATH itself is replaced by the file; a directory on the way that leads out of the image
# stops the install (replacing it would drop what the image keeps there).
own_file() {
  _own_p="$TARGET"
  _own_rest="${1#/}"
  while :; do
    case "$_own_rest" in */*) ;; *) break ;; esac
    _own_p="$_own_p/${_own_rest%%/*}"
    _own_rest="${_own_rest#*/}"
    [ -L "$_own_p" ] || continue
    case "$(realpath "$_own_p" 2>/dev/null)/" in
      "$TARGET"/*) ;;
      *) IDENTITY_ERROR="${_own_p#"$TARGET"} in the image is a link out of it (to $(readlink "$_own_p")); the installer does not write through it"; return 1 ;;
    esac
  done
  [ -L "$TARGET/${1#/}" ] && rm -f "$TARGET/${1#/}"
  return 0
}

write_identity() {
  [ -d "$TARGET/etc" ] || { IDENTITY_ERROR="the image has no /etc"; return 1; }
  # The image's hosts lines are kept: read before a link at /etc/hosts is replaced, and only through one that stays in
  # the image (an absolute link would read the installer's).
  _hosts="$TARGET/etc/hosts"
  case "$(realpath "$_hosts" 2>/dev/null)" in "$TARGET"/*) ;; *) _hosts=/dev/null ;; esac
  { grep -v '^127\.0\.1\.1[[:space:]]' "$_hosts" 2>/dev/null; echo "127.0.1.1 $P_HOSTNAME"; } > /run/hosts
  for f in /etc/hostname /etc/hosts /etc/fstab; do own_file "$f" || return 1; done
  echo "$P_HOSTNAME" > "$TARGET/etc/hostname" || return 1
  cat /run/hosts > "$TARGET/etc/hosts" || return 1
  write_fstab || { IDENTITY_ERROR="writing /etc/fstab failed"; return 1; }
  write_network || { IDENTITY_ERROR="${IDENTITY_ERROR:-writing the network configuration failed}"; return 1; }
  write_ssh || { IDENTITY_ERROR="${IDENTITY_ERROR:-installing the SSH keys failed}"; return 1; }
  write_firstboot || { IDENTITY_ERROR="${IDENTITY_ERROR:-writing the first-boot callback failed}"; return 1; }
  # Empty, not absent: systemd then makes a new one at first boot (the image's would be shared by every node).
  if [ -e "$TARGET/etc/machine-id" ] || [ -L "$TARGET/etc/machine-id" ]; then
    own_file /etc/machine-id || return 1
    : > "$TARGET/etc/machine-id"
  fi
  rm -f "$TARGET/var/lib/dbus/machine-id"
  say "identity written for $P_HOSTNAME"
}

write_network() {
  own_file /etc/systemd/network/10-rackseed-provisioning.network || return 1
  mkdir -p "$TARGET/etc/systemd/network"
  cat > "$TARGET/etc/systemd/network/10-rackseed-provisioning.network" <<NET || return 1
# Written by the rackseed installer: DHCP on the interface the node was provisioned through.
[Match]
MACAddress=$P_MAC

[Network]
DHCP=ipv4

[DHCPv4]
ClientIdentifier=mac
NET
  # Enabled the way systemctl enable would, when the image has networkd and does not run ifupdown on it.
  unit=/lib/systemd/system/systemd-networkd.service
  if [ -e "$TARGET$unit" ] || [ -e "$TARGET/usr$unit" ]; then
    mkdir -p "$TARGET/etc/systemd/system/multi-user.target.wants" "$TARGET/etc/systemd/system/sockets.target.wants"
    ln -sf "$unit" "$TARGET/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
    [ -e "$TARGET/lib/systemd/system/systemd-networkd.socket" ] &&
      ln -sf /lib/systemd/system/systemd-networkd.socket "$TARGET/etc/systemd/system/sockets.target.wants/systemd-networkd.socket"
  elif [ -d "$TARGET/etc/network/interfaces.d" ]; then
    say "no systemd-networkd in the image: ifupdown must bring the provisioning interface up itself"
  fi
  return 0
}

write_ssh() {
  for f in /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub /etc/ssh/sshd_config.d/10-rackseed-hostkey.conf /root/.ssh/authorized_keys; do
    own_file "$f" || return 1
  done
  mkdir -p "$TARGET/etc/ssh" || return 1
  rm -f "$TARGET"/etc/ssh/ssh_host_*
  key="$TARGET/etc/ssh/ssh_host_ed25519_key"
  ( umask 077; printf '%s' "$P_HOSTKEY_B64" | base64 -d > "$key" ) || { IDENTITY_ERROR="the plan's host key is not base64"; return 1; }
  grep -q 'BEGIN OPENSSH PRIVATE KEY' "$key" || { IDENTITY_ERROR="the plan's host key is not an OpenSSH private key"; return 1; }
  chmod 600 "$key"
  printf '%s\n' "$P_HOSTPUB" > "$key.pub"
  chmod 644 "$key.pub"
  # Only the key the server pinned: sshd must not look for the (removed) RSA and ECDSA ones.
  if [ -d "$TARGET/etc/ssh/sshd_config.d" ]; then
    echo "HostKey /etc/ssh/ssh_host_ed25519_key" > "$TARGET/etc/ssh/sshd_config.d/10-rackseed-hostkey.conf"
  fi
  mkdir -p "$TARGET/root/.ssh"
  chmod 700 "$TARGET/root/.ssh"
  # The server's key is added to the keys the image carries (a site's admin keys stay), once. A link there was
  # replaced above (own_file): written through, it would land wherever the image points it.
  auth="$TARGET/root/.ssh/authorized_keys"
  touch "$auth" || return 1
  [ -s "$auth" ] && [ -n "$(tail -c 1 "$auth")" ] && echo >> "$auth"
  while IFS= read -r k; do
    [ -n "$k" ] || continue
    grep -qxF "$k" "$auth" || printf '%s\n' "$k" >> "$auth" || return 1
  done < "$AUTHORIZED"
  chmod 600 "$auth"
  chown -R 0:0 "$TARGET/root/.ssh" "$key" "$key.pub"
}

# installed_boot kernel: rackseed's iPXE script boots the image's kernel with root=LABEL=rackseed-root, so
# nothing is written to the boot sector. local: the image's GRUB is installed from inside the new tree, for the
# firmware this machine booted with (UEFI: the removable path on the /boot/efi partition, so no NVRAM entry is
# needed; BIOS: the disk's boot sector, with the core in the BIOS boot partition on GPT), and the group's kernel
# arguments go into GRUB's defaults.
install_bootloader() {
  [ "$P_BOOT" = local ] || return 0
  report_stage bootloader
  [ -x "$TARGET/usr/sbin/grub-install" ] || { IDENTITY_ERROR="installed_boot local, but the image has no grub-install (its recipe needs grub2-common and grub-pc-bin or grub-efi-amd64-bin, as images/debian12.yaml has)"; return 1; }
  if [ -d /sys/firmware/efi ]; then
    grub_target=x86_64-efi grub_bin=grub-efi-amd64-bin
    grep -qx "$TARGET/boot/efi" /run/mounted || { IDENTITY_ERROR="installed_boot local on a UEFI machine needs a vfat partition mounted at /boot/efi in the group's disk layout"; return 1; }
  else
    grub_target=i386-pc grub_bin=grub-pc-bin
  fi
  [ -d "$TARGET/usr/lib/grub/$grub_target" ] || { IDENTITY_ERROR="installed_boot local, but the image has no GRUB for $grub_target (package $grub_bin)"; return 1; }
  write_grub_defaults || { IDENTITY_ERROR="${IDENTITY_ERROR:-writing GRUB's defaults failed}"; return 1; }
  for d in dev proc sys; do mount --bind "/$d" "$TARGET/$d" && echo "$TARGET/$d" >> /run/mounted; done
  if [ "$grub_target" = x86_64-efi ]; then
    chroot "$TARGET" grub-install --target=x86_64-efi --efi-directory=/boot/efi --removable --no-nvram
  else
    chroot "$TARGET" grub-install --target=i386-pc "$P_DISK"
  fi || { IDENTITY_ERROR="grub-install --target=$grub_target failed (the console above says why)"; return 1; }
  chroot "$TARGET" update-grub || { IDENTITY_ERROR="update-grub failed"; return 1; }
  say "GRUB for $grub_target installed; kernel arguments: ${P_KERNEL_ARGS:-none}"
}

# Appended to whatever the image's own defaults say. plan.sh let through only characters that mean nothing to a
# shell (no quotes, $, backticks or backslashes), so the double quotes hold them as they are.
write_grub_defaults() {
  own_file /etc/default/grub.d/rackseed.cfg || return 1
  mkdir -p "$TARGET/etc/default/grub.d" || return 1
  {
    echo "# Written by the rackseed installer: the group's kernel_args."
    echo "GRUB_CMDLINE_LINUX=\"\${GRUB_CMDLINE_LINUX:+\$GRUB_CMDLINE_LINUX }$P_KERNEL_ARGS\""
  } > "$TARGET/etc/default/grub.d/rackseed.cfg"
}

# The installed system's first boot: a oneshot unit tells the server "this node is up in its OS", so the server
# applies its states and checks its readiness at once rather than at its next SSH probe. Written only when the plan
# carries the callback. The token (bound to this node and to this one purpose) is kept 0600 for root.
write_firstboot() {
  [ -n "${P_BOOTED_URL:-}" ] && [ -n "${P_CALLBACK_TOKEN:-}" ] || return 0
  for f in /etc/rackseed/callback-token /etc/rackseed/booted-url /usr/local/sbin/rackseed-firstboot \
    /etc/systemd/system/rackseed-firstboot.service /etc/systemd/system/multi-user.target.wants/rackseed-firstboot.service; do
    own_file "$f" || return 1
  done
  mkdir -p "$TARGET/etc/rackseed" "$TARGET/usr/local/sbin" "$TARGET/etc/systemd/system/multi-user.target.wants" || return 1
  chmod 700 "$TARGET/etc/rackseed"
  ( umask 077; printf '%s\n' "$P_CALLBACK_TOKEN" > "$TARGET/etc/rackseed/callback-token" ) || return 1
  chmod 600 "$TARGET/etc/rackseed/callback-token"
  printf '%s\n' "$P_BOOTED_URL" > "$TARGET/etc/rackseed/booted-url" || return 1
  chown -R 0:0 "$TARGET/etc/rackseed"
  # An image made from a node that had booted must not carry that node's "already called back" marker.
  rm -f "$TARGET/var/lib/rackseed/firstboot-done"
  cat > "$TARGET/usr/local/sbin/rackseed-firstboot" <<'SCRIPT' || return 1
#!/bin/sh
# Written by the rackseed installer. Tells the provisioning server this node is up in its installed OS, so the
# server configures it now (it reaches the node over SSH with the host key it pinned; this call only asks). If the
# server never hears it, it still finds the node by probing its SSH port; the next boot tries again.
# RACKSEED_ROOT is for tests only: the files below, under another root.
root="${RACKSEED_ROOT:-}"
url="$(cat "$root/etc/rackseed/booted-url")" || exit 1
token="$(cat "$root/etc/rackseed/callback-token")" || exit 1
marker="$root/var/lib/rackseed/firstboot-done"

post() {
  if command -v curl > /dev/null 2>&1; then
    curl -fsS -m 10 -X POST -H "Authorization: Bearer $token" -o /dev/null "$url"
  elif command -v wget > /dev/null 2>&1; then
    wget -q -T 10 -O /dev/null --header "Authorization: Bearer $token" --post-data '' "$url"
  else
    echo "rackseed-firstboot: neither curl nor wget here; the server finds this node by probing its SSH port" >&2
    return 2
  fi
}

i=0
while [ "$i" -lt 5 ]; do
  post
  rc=$?
  if [ "$rc" = 0 ] || [ "$rc" = 2 ]; then
    mkdir -p "${marker%/*}" && : > "$marker"
    [ "$rc" = 0 ] && echo "rackseed-firstboot: told $url"
    exit 0
  fi
  i=$((i + 1))
  sleep 5
done
echo "rackseed-firstboot: $url did not take the call; trying again at the next boot" >&2
exit 1
SCRIPT
  chmod 755 "$TARGET/usr/local/sbin/rackseed-firstboot"
  cat > "$TARGET/etc/systemd/system/rackseed-firstboot.service" <<'UNIT' || return 1
# Written by the rackseed installer: call the provisioning server back once this node is up in its installed OS.
[Unit]
Description=Tell the rackseed server this node has booted its installed OS
Wants=network-online.target
After=network-online.target
ConditionPathExists=!/var/lib/rackseed/firstboot-done

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/rackseed-firstboot
TimeoutStartSec=120

[Install]
WantedBy=multi-user.target
UNIT
  chmod 644 "$TARGET/etc/systemd/system/rackseed-firstboot.service"
  # Enabled the way systemctl enable would.
  ln -sf /etc/systemd/system/rackseed-firstboot.service "$TARGET/etc/systemd/system/multi-user.target.wants/rackseed-firstboot.service"
  say "first-boot callback installed"
}
