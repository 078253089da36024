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
