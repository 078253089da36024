import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import path from 'node:path';

/**
 * The cheap half of "is the installed node up in its OS yet": a TCP connect to its SSH port, closed at once. The
 * expensive half, SSH with the host key pinned at provisioning, is the convergence itself, so a probe that answers
 * for the wrong machine (an address reused) costs one refused convergence, never trust.
 */
export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (up: boolean): void => {
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.destroy();
      resolve(up);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Whether the node has a host key pinned by this server (written when its install plan was served, see
 * node-identity.ts): only such nodes are probed and converged; any other is not rackseed's to reach.
 */
export function hasPinnedHostKey(dataDir: string, node: string): boolean {
  return existsSync(path.join(dataDir, 'nodes', node, 'known_host'));
}
