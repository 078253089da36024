import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { Logger } from '../log.js';
import { RackseedError } from '../model/errors.js';
import type { DhcpModeHandler, Incoming, Outgoing } from '../dhcp/handler.js';
import { bump, type DhcpStats } from '../dhcp/stats.js';
import { decode, encode } from '../protocol/dhcp/codec.js';
import { BOOTREQUEST } from '../protocol/dhcp/packet.js';

/**
 * Room for a boot storm (about a thousand DISCOVERs) without kernel drops, yet small enough that a queued request
 * is answered within a fraction of a second: under overload a late answer is worth less than a dropped one, since
 * the client has already retransmitted.
 */
const RECEIVE_BUFFER_BYTES = 1024 * 1024;

export interface DhcpListenerOptions {
  serverIp: string;
  /** The provisioning interface; checked to carry serverIp at start. */
  interface: string;
  port: number;
  /** proxyDHCP's boot-server port; undefined in full mode. */
  proxyPort?: number;
  handler: DhcpModeHandler;
  stats: DhcpStats;
  log: Logger;
}

export interface DhcpListener {
  close(): Promise<void>;
}

function bind(socket: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port, address, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

/**
 * Node's dgram cannot bind to a device nor tell which interface a datagram arrived on (no SO_BINDTODEVICE, no
 * IP_PKTINFO). So: one socket on 0.0.0.0 receives the broadcasts, one on the server's own address receives
 * unicasts (relays, renewals, port 4011) and sends every reply. Sending from the address-bound socket is what
 * lets a broadcast reply leave through the provisioning interface without a host route for 255.255.255.255.
 * The consequence is documented in the README: on a host with several broadcast domains, the others must be
 * kept away from port 67 (a relay-only network, a firewall rule, or a network namespace).
 */
export async function startDhcpListener(opts: DhcpListenerOptions): Promise<DhcpListener> {
  const addresses = networkInterfaces()[opts.interface];
  if (!addresses) {
    throw new RackseedError('CONFIG_INVALID', `dhcp.interface: no interface "${opts.interface}" on this host (or in this network namespace)`);
  }
  if (!addresses.some((a) => a.family === 'IPv4' && a.address === opts.serverIp)) {
    throw new RackseedError('CONFIG_INVALID', `dhcp.server_ip: ${opts.serverIp} is not an address of interface ${opts.interface}`);
  }
  const { stats, log, handler } = opts;
  const sockets: Socket[] = [];
  const make = () => {
    const s = createSocket({ type: 'udp4', reuseAddr: true });
    sockets.push(s);
    return s;
  };
  const wildcard = make();
  const unicast = make();
  const proxy = opts.proxyPort !== undefined ? make() : undefined;

  const send = (out: Outgoing): void => {
    const bytes = encode(out.packet);
    const failed = (err: Error) => {
      stats.sendErrors++;
      log.warn({ err: err.message, to: `${out.route.address}:${out.route.port}`, kind: out.kind }, 'DHCP reply not sent');
    };
    // dgram throws synchronously for some destinations (a bad port, an unresolvable address): a reply that cannot go
    // out is counted like one the kernel refused, it must not take the process down.
    try {
      unicast.send(bytes, out.route.port, out.route.address, (err) => {
        if (err) failed(err);
      });
    } catch (err) {
      failed(err as Error);
    }
  };

  const onMessage = (receivedOn: Incoming['receivedOn']) => (msg: Buffer, rinfo: RemoteInfo) => {
    stats.received++;
    // Port 0 is no client's port: a reply could not be addressed to it (the proxy port answers the source port).
    if (rinfo.port === 0) {
      bump(stats.dropped, 'SOURCE_PORT_ZERO');
      return;
    }
    const decoded = decode(msg);
    if (!decoded.ok) {
      bump(stats.dropped, decoded.error.code);
      log.debug({ from: rinfo.address, code: decoded.error.code, bytes: msg.length }, 'malformed DHCP datagram dropped');
      return;
    }
    // Our own replies and other servers' replies reach the wildcard socket too.
    if (decoded.packet.op !== BOOTREQUEST) {
      bump(stats.dropped, 'NOT_A_REQUEST');
      return;
    }
    handler.handle({ packet: decoded.packet, receivedOn, source: { address: rinfo.address, port: rinfo.port } }).then(
      (out) => {
        if (out) send(out);
      },
      (err: unknown) => {
        bump(stats.dropped, 'HANDLER_ERROR');
        log.error({ err, mac: decoded.packet.mac }, 'DHCP request could not be handled');
      },
    );
  };

  wildcard.on('message', onMessage('dhcp'));
  unicast.on('message', onMessage('dhcp'));
  proxy?.on('message', onMessage('proxy'));
  for (const s of sockets) s.on('error', (err) => log.error({ err }, 'DHCP socket error'));

  try {
    await bind(wildcard, opts.port, '0.0.0.0');
    await bind(unicast, opts.port, opts.serverIp);
    unicast.setBroadcast(true);
    wildcard.setBroadcast(true);
    if (proxy) await bind(proxy, opts.proxyPort!, opts.serverIp);
    // The kernel caps this at net.core.rmem_max.
    for (const s of sockets) s.setRecvBufferSize(RECEIVE_BUFFER_BYTES);
  } catch (e) {
    for (const s of sockets) s.close();
    throw new RackseedError('CONFIG_INVALID', `dhcp: cannot listen on UDP ${opts.port}${opts.proxyPort ? `/${opts.proxyPort}` : ''}: ${(e as Error).message}`, {}, { cause: e });
  }
  log.info({ interface: opts.interface, serverIp: opts.serverIp, port: opts.port, proxyPort: opts.proxyPort }, 'DHCP listening');

  return {
    async close() {
      await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
