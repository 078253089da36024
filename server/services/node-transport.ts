import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { RackseedError } from '../model/errors.js';
import type { ResolvedNode } from '../model/inventory.js';
import { openSshTransport } from '../state/transport/ssh.js';
import type { Transport } from '../state/types.js';
import type { NodeIdentity } from './node-identity.js';

/**
 * How a service reaches a node. The default is SSH; tests inject fakes. `signal` aborted while connecting: the
 * half-open connection is closed and the call rejects with STATE_CANCELLED, rather than waiting out the connect timeout.
 */
export type TransportFactory = (node: ResolvedNode, options?: { signal?: AbortSignal }) => Promise<Transport>;

export interface SshTransportSettings {
  identity: NodeIdentity;
  sshPort: number;
  connectTimeoutMs: number;
}

/**
 * SSH as root with the server's key, the node's host key pinned at provisioning: a node without a pin (never
 * provisioned by rackseed) is refused rather than trusted on first use.
 */
export function sshTransportFactory(settings: SshTransportSettings): TransportFactory {
  return async (node, options = {}) => {
    if (!node.ip) throw new RackseedError('STATE_TRANSPORT', `${node.name} has no ip in the inventory: nowhere to connect to`);
    const pinFile = path.join(settings.identity.dataDir, 'nodes', node.name, 'known_host');
    if (!existsSync(pinFile)) {
      throw new RackseedError('SSH_HOST_KEY_UNKNOWN', `${node.name} has no pinned host key (${pinFile}); it gets one when rackseed provisions it`);
    }
    // Makes the server's key pair on first use, so serverKeyFile exists below.
    await settings.identity.serverPublicKey();
    return openSshTransport({
      target: node.name,
      host: node.ip,
      port: settings.sshPort,
      username: 'root',
      privateKey: readFileSync(settings.identity.serverKeyFile, 'utf8'),
      knownHostKey: readFileSync(pinFile, 'utf8'),
      connectTimeoutMs: settings.connectTimeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  };
}

/** A transport's error message without the `<node>: ` it starts with, for a caller that names the node itself. */
export function withoutTarget(message: string, target: string): string {
  return message.startsWith(`${target}: `) ? message.slice(target.length + 2) : message;
}
