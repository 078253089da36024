import type { ChildProcess } from 'node:child_process';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Netns } from './netns.js';

/**
 * A TCP port on the host's loopback that reaches an address inside a namespace, without giving the host any new
 * interface or route: a small forwarder inside the namespace listens on a Unix socket (a file both sides see) and
 * connects to the target; this process listens on 127.0.0.1 and pipes each connection into that socket.
 */

/** Inside the namespace: the Unix socket in argv relays to host:port over TCP. Half-closes pass through. */
const FORWARDER = `
const net = require('node:net');
const fs = require('node:fs');
const [sock, host, port] = process.argv.slice(1);
try { fs.unlinkSync(sock); } catch {}
net.createServer((c) => {
  const u = net.connect(Number(port), host);
  u.setNoDelay(true);
  c.pipe(u); u.pipe(c);
  const done = () => { c.destroy(); u.destroy(); };
  c.on('error', done); u.on('error', done); c.on('close', done); u.on('close', done);
}).listen(sock, () => console.log('ready'));
`;

export interface Relay {
  /** The loopback port in the host namespace that reaches the target. */
  port: number;
  /** The forwarder's PID (inside the namespace). */
  forwarderPid: number;
  close(): Promise<void>;
}

function waitForReady(child: ChildProcess, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => finish(new Error(`${what} not ready after ${ms} ms:\n${seen}`)), ms);
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      if (/ready/.test(seen)) finish();
    };
    const onExit = (code: number | null, signal: string | null): void => finish(new Error(`${what} exited (${code ?? signal}) before it was ready:\n${seen}`));
    const finish = (error?: Error): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Relays 127.0.0.1:`listenPort` (0: any free port) in this process to `ip:port` inside namespace `ns`. */
export async function startRelay(netns: Netns, ns: string, socketPath: string, ip: string, port: number, listenPort = 0): Promise<Relay> {
  const forwarder = netns.spawn(ns, process.execPath, ['-e', FORWARDER, socketPath, ip, String(port)]);
  const forwarderPid = forwarder.pid;
  if (forwarderPid === undefined) throw new Error(`could not start the forwarder to ${ip}:${port}`);
  await waitForReady(forwarder, 10_000, `forwarder to ${ip}:${port}`);
  const sockets = new Set<Socket>();
  // No Nagle on the relay's TCP ends: it would add a delayed-ACK wait (40 ms) to every small SSH packet.
  const server: Server = createServer({ noDelay: true }, (client) => {
    const upstream = createConnection(socketPath);
    client.pipe(upstream);
    upstream.pipe(client);
    const done = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
    };
    sockets.add(client);
    client.on('error', done);
    upstream.on('error', done);
    client.on('close', done);
    upstream.on('close', done);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listenPort, '127.0.0.1', () => resolve());
    });
  } catch (err) {
    await netns.stop(forwarder);
    throw err;
  }
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('relay has no port');
  return {
    port: address.port,
    forwarderPid,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await netns.stop(forwarder);
    },
  };
}
