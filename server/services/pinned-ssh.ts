import path from 'node:path';

/**
 * ssh options for reaching a node the way the server does: the server's own key and only the host keys it pinned
 * (`<data_dir>/ssh`, kept by NodeIdentity); BatchMode so nothing ever prompts, StrictHostKeyChecking so an unknown
 * or changed host key is a failure rather than a question. Callers add the target and the command.
 */
export function pinnedSshOptions(dataDir: string, connectTimeoutSeconds: number): string[] {
  const sshDir = path.join(dataDir, 'ssh');
  return [
    '-o', 'BatchMode=yes',
    '-o', `UserKnownHostsFile=${path.join(sshDir, 'known_hosts')}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `ConnectTimeout=${connectTimeoutSeconds}`,
    '-i', path.join(sshDir, 'id_ed25519'),
  ];
}

/**
 * The options and `root@ip` for a node whose sshd listens on `port` (states.ssh_port). Off port 22 ssh would look the
 * host key up as `[ip]:port`, which the pins (`name,ip key`) never hold: HostKeyAlias makes it look up the address.
 */
export function pinnedSshDestination(dataDir: string, ip: string, port: number, connectTimeoutSeconds: number): string[] {
  return [...pinnedSshOptions(dataDir, connectTimeoutSeconds), ...(port !== 22 ? ['-p', String(port), '-o', `HostKeyAlias=${ip}`] : []), `root@${ip}`];
}
