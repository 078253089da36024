import { spawn } from 'node:child_process';
import { pinnedSshDestination } from '../services/pinned-ssh.js';

/**
 * `ssh root@ip systemctl reboot` with the server's own key and its pinned host keys (pinned-ssh.ts), on the port the
 * state runs use (states.ssh_port). The child is killed by its PID when `signal` aborts.
 */
export function sshRebootArgs(dataDir: string, ip: string, port = 22): string[] {
  return [...pinnedSshDestination(dataDir, ip, port, 10), 'systemctl', 'reboot'];
}

export function sshReboot(dataDir: string, ip: string, signal: AbortSignal, port = 22): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', sshRebootArgs(dataDir, ip, port), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const onAbort = () => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    };
    signal.addEventListener('abort', onAbort, { once: true });
    child.once('error', (e) => {
      signal.removeEventListener('abort', onAbort);
      reject(new Error(`cannot run ssh: ${e.message}`));
    });
    child.once('close', (code) => {
      signal.removeEventListener('abort', onAbort);
      // The node may drop the connection while it goes down: that is the reboot working, not failing.
      if (code === 0 || (code === 255 && /closed by remote host|connection reset/i.test(stderr))) return resolve();
      const line = stderr.split('\n').map((l) => l.trim()).filter(Boolean).pop();
      reject(new Error(signal.aborted ? 'ssh stopped: no answer in time' : line ?? `ssh exited with status ${code}`));
    });
  });
}
