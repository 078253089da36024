/**
 * Read-only TFTP server for the netboot loaders (undionly.kpxe, ipxe.efi, snponly.efi), built on the `tftp`
 * package but never trusting it with anything it gets wrong:
 *
 * - every datagram on the listening port is classified here first, so write requests, traversal attempts
 *   and garbage are answered (and counted) without the package allocating a socket per datagram;
 * - every transfer socket gets a guard in front of the package's own listener, because the package reads
 *   past the end of short datagrams, accepts packets from any source address, and dereferences a missing
 *   window on stale ACKs: each of those throws inside a dgram listener and would take the process down;
 * - the file is resolved and opened here (real path inside the root, regular file), never by the package.
 */
import { constants as fsConstants, createReadStream, type ReadStream } from 'node:fs';
import { open, readlink, realpath, stat, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import type { Socket, RemoteInfo } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import tftp, { type IncomingRequest, type OutgoingResponse, type Server } from 'tftp';
import { isInside } from '../util/inside.js';
import {
  OP_ACK,
  OP_ERROR,
  TFTP_ERR,
  TFTP_MSG,
  classifyRequest,
  errorPacket,
  normaliseRequestName,
} from './tftp-packet.js';

export type TftpErrorReason = 'not_found' | 'traversal' | 'write_denied' | 'protocol' | 'aborted' | 'io' | 'busy';

export interface TftpLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child?(bindings: Record<string, unknown>): TftpLogger;
}

export interface TftpTransferEvent {
  /** The name as the client sent it; once it reached the file lookup, normalised (backslashes, `a/../b`). */
  file: string;
  /** "address:port" of the client. */
  client: string;
  /**
   * Bytes read from the file for the transfer: all of it for one that succeeded; for one that failed, up to a read
   * buffer (256 KiB) more than the client acknowledged (the package does not say how far the client got).
   */
  bytes: number;
  ok: boolean;
  reason?: TftpErrorReason;
  error?: string;
  durationMs: number;
}

export interface TftpServerOptions {
  host: string;
  port: number;
  root: string;
  logger?: TftpLogger | Logger;
  /** Largest RFC 7440 window granted. The package would cap clients at 4 unless told otherwise. */
  windowSize?: number;
  /**
   * Real paths outside the root that a symlink inside the root may lead to (a file, or a directory and
   * everything under it). Debian's /usr/lib/ipxe/ipxe.efi and ipxe.lkrn are symlinks into /boot, so serving
   * that directory directly needs ['/boot/ipxe.efi', '/boot/ipxe.lkrn'] here; everything else is refused.
   */
  allowSymlinkTargets?: string[];
  onTransfer?: (e: TftpTransferEvent) => void;
  /**
   * Transfers at once, in all and per client address; a read request beyond either is answered "server busy"
   * (the client retries). Each transfer holds a socket, an open file and a read buffer for up to its timeout.
   */
  maxTransfers?: number;
  maxTransfersPerClient?: number;
}

export interface TftpStats {
  /** Datagrams that reached the listening port, valid or not. */
  requests: number;
  transfersOk: number;
  active: number;
  bytesSent: number;
  errors: Record<TftpErrorReason, number>;
  /** Packets that arrived on a transfer port from someone other than that transfer's client. */
  foreignPackets: number;
}

export interface TftpServerHandle {
  close(): Promise<void>;
  address(): AddressInfo;
  stats(): TftpStats;
}

// Shapes of the package's private objects that the guard needs (node_modules/tftp/lib/protocol/writer.js,
// request.js, streams/server/put-stream.js). Checked at run time before use.
interface PkgWindow {
  _end: number;
  _cb: (() => void) | null;
  /** The window's blocks not known to be received yet, in order. */
  _blocks: Array<{ block: number; data: Buffer }>;
  _sendFn: (block: { block: number; data: Buffer }) => void;
  _writerTimer: { reset(): void; start(fn: () => void): void };
  _restransmitterSendFn: () => void;
}
interface PkgWriter {
  _socket: Socket;
  _address: string;
  _port: number;
  _oackSent: boolean;
  _window: PkgWindow | null;
}
interface PkgServer extends Server {
  _socket: Socket;
}

const DEFAULT_WINDOW = 64;
// The package's blksize ceiling: the largest block that avoids IP fragmentation on a 1500-byte Ethernet MTU.
const MAX_BLOCK = 1468;
// Shorter than the package's 3 s: iPXE retries on its own schedule and a lost window otherwise stalls 3 s.
const RETRANSMIT_MS = 1000;
const RETRIES = 5;
const CLOSE_GRACE_MS = 2000;
const GARBAGE_LOG_EVERY_MS = 5000;
const DEFAULT_MAX_TRANSFERS = 512;
const DEFAULT_MAX_PER_CLIENT = 16;
/** A request handed to the package that never became a transfer (the package refused it) frees its slot after this. */
const PENDING_EXPIRY_MS = 10_000;

/**
 * The package's read stream emits 'error' when its transfer socket cannot be bound (EMFILE), before the 'request'
 * event gives anyone the stream to listen on: an 'error' without a listener throws, and took the whole server down.
 * Such an error is dropped here (the transfer never started; the client times out and retries).
 */
function guardPackageStreams(log: TftpLogger | null): void {
  const GetStream = createRequire(import.meta.url)('tftp/lib/streams/server/get-stream.js') as { prototype: { emit: (event: string | symbol, ...args: unknown[]) => boolean; listenerCount(event: string): number; __rackseedGuard?: true } };
  const proto = GetStream.prototype;
  if (proto.__rackseedGuard) return;
  const emit = proto.emit;
  proto.emit = function (this: typeof proto, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error' && this.listenerCount('error') === 0) {
      log?.warn({ err: String(args[0]) }, 'tftp: a transfer could not start');
      return false;
    }
    return emit.call(this, event, ...args);
  };
  proto.__rackseedGuard = true;
}

/**
 * An error reply that may not arrive: the client vanished, ICMP said unreachable, or dgram refused the address
 * synchronously. None of that is ours to handle, and none of it may escape a socket listener (it would end the process).
 */
function sendQuietly(socket: Socket, packet: Buffer, to: RemoteInfo): void {
  try {
    socket.send(packet, 0, packet.length, to.port, to.address, () => {});
  } catch {
    // Nothing was sent; the client retries or gives up, as it would after a lost datagram.
  }
}

function fsReason(err: unknown): TftpErrorReason {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG' ? 'not_found' : 'io';
}

function wireMessage(reason: TftpErrorReason): string {
  switch (reason) {
    case 'not_found':
      return TFTP_MSG.notFound;
    case 'traversal':
    case 'write_denied':
      return TFTP_MSG.accessViolation;
    case 'protocol':
      return TFTP_MSG.illegalOperation;
    case 'io':
    case 'aborted':
      return TFTP_MSG.io;
    case 'busy':
      return TFTP_MSG.busy;
  }
}

class Failure extends Error {
  constructor(
    readonly reason: TftpErrorReason,
    message: string,
  ) {
    super(message);
  }
}

export async function startTftpServer(opts: TftpServerOptions): Promise<TftpServerHandle> {
  const baseLog = (opts.logger ?? null) as TftpLogger | null;
  const log: TftpLogger | null = baseLog?.child ? baseLog.child({ component: 'tftp' }) : baseLog;
  const windowSize = Math.trunc(opts.windowSize ?? DEFAULT_WINDOW);
  if (!(windowSize >= 1 && windowSize <= 65535)) throw new RangeError(`tftp windowSize must be 1..65535, got ${opts.windowSize}`);

  const rootReal = await realpath(resolve(opts.root));
  if (!(await stat(rootReal)).isDirectory()) throw new Error(`tftp root is not a directory: ${opts.root}`);
  const allowTargets: string[] = [];
  for (const t of opts.allowSymlinkTargets ?? []) {
    try {
      allowTargets.push(await realpath(t));
    } catch (err) {
      log?.warn({ target: t, err }, 'tftp: allowed symlink target does not exist; ignored');
    }
  }
  const allowed = (real: string): boolean => isInside(real, rootReal) || allowTargets.some((t) => isInside(real, t));
  const canVerifyFd = await stat('/proc/self/fd').then(
    (s) => s.isDirectory(),
    () => false,
  );

  const counters: TftpStats = {
    requests: 0,
    transfersOk: 0,
    active: 0,
    bytesSent: 0,
    errors: { not_found: 0, traversal: 0, write_denied: 0, protocol: 0, aborted: 0, io: 0, busy: 0 },
    foreignPackets: 0,
  };
  const active = new Set<{ req: IncomingRequest; done: Promise<void> }>();
  let closing = false;
  guardPackageStreams(log);
  const maxTransfers = opts.maxTransfers ?? DEFAULT_MAX_TRANSFERS;
  const maxPerClient = opts.maxTransfersPerClient ?? DEFAULT_MAX_PER_CLIENT;
  // Slots per client address: taken when a read request is handed to the package, kept by its transfer until the
  // transfer ends (or freed after PENDING_EXPIRY_MS when the package never started one).
  const perClient = new Map<string, number>();
  const pending = new Map<string, NodeJS.Timeout>();
  const take = (address: string) => perClient.set(address, (perClient.get(address) ?? 0) + 1);
  const release = (address: string) => {
    const n = (perClient.get(address) ?? 0) - 1;
    if (n > 0) perClient.set(address, n);
    else perClient.delete(address);
  };

  const emit = (e: TftpTransferEvent): void => {
    if (e.ok) counters.transfersOk++;
    else if (e.reason) counters.errors[e.reason]++;
    try {
      opts.onTransfer?.(e);
    } catch (err) {
      log?.error({ err }, 'tftp: onTransfer callback threw');
    }
  };

  /**
   * One warning per GARBAGE_LOG_EVERY_MS for a kind of refusal, with how many were left out: a client looping on a
   * refused name (or a scanner) must not write a log line per datagram.
   */
  const limitedWarning = (message: string) => {
    let at = 0;
    let suppressed = 0;
    return (fields: Record<string, unknown>): void => {
      const now = Date.now();
      if (now - at < GARBAGE_LOG_EVERY_MS) {
        suppressed++;
        return;
      }
      log?.warn({ ...fields, suppressed }, message);
      at = now;
      suppressed = 0;
    };
  };
  const warnWriteRefused = limitedWarning('tftp: write request refused');
  const warnOutsideRoot = limitedWarning('tftp: path outside the root refused');

  const warnMalformed = limitedWarning('tftp: malformed datagram');
  const logGarbage = (rinfo: RemoteInfo, why: string): void => warnMalformed({ client: `${rinfo.address}:${rinfo.port}`, why });
  const warnBusy = limitedWarning('tftp: busy, read request refused');

  const server = tftp.createServer(
    {
      host: opts.host,
      port: opts.port || 69,
      root: rootReal,
      denyPUT: true,
      windowSize,
      blockSize: MAX_BLOCK,
      timeout: RETRANSMIT_MS,
      retries: RETRIES,
    },
    (req, res) => {
      // Never let an exception escape into the package's event emitter.
      try {
        handleRequest(req, res);
      } catch (err) {
        log?.error({ err }, 'tftp: request handler failed');
        safeAbort(req, TFTP_MSG.io);
      }
    },
  ) as PkgServer;
  // The package turns port 0 into 69; listen() reads this field, so an ephemeral port still works.
  server.port = opts.port;

  const mainSocket = server._socket;
  const pkgListeners = mainSocket?.listeners('message') ?? [];
  const pkgOnMessage = pkgListeners[0];
  if (!mainSocket || pkgListeners.length !== 1 || typeof pkgOnMessage !== 'function') {
    throw new Error('tftp: unexpected internals in the tftp package (expected one message listener on _socket)');
  }
  mainSocket.removeAllListeners('message');

  const replyFromMain = (rinfo: RemoteInfo, code: number, message: string): void => {
    sendQuietly(mainSocket, errorPacket(code, message), rinfo);
  };

  mainSocket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    counters.requests++;
    if (closing) return;
    // Port 0 is no client's port, and dgram throws on sending to it: not a request anyone can be answered on.
    if (rinfo.port === 0) {
      logGarbage(rinfo, 'source port 0');
      counters.errors.protocol++;
      return;
    }
    let verdict;
    try {
      verdict = classifyRequest(msg);
    } catch (err) {
      verdict = { kind: 'protocol' as const, rawName: '', why: String(err), silent: false };
    }
    const client = `${rinfo.address}:${rinfo.port}`;
    switch (verdict.kind) {
      case 'read':
        if (active.size + pending.size >= maxTransfers || (perClient.get(rinfo.address) ?? 0) >= maxPerClient) {
          replyFromMain(rinfo, TFTP_ERR.undefined, TFTP_MSG.busy);
          emit({ file: verdict.rawName, client, bytes: 0, ok: false, reason: 'busy', error: 'too many transfers at once', durationMs: 0 });
          warnBusy({ client, active: active.size, pending: pending.size, fromClient: perClient.get(rinfo.address) ?? 0 });
          return;
        }
        if (!pending.has(client)) {
          take(rinfo.address);
          const expiry = setTimeout(() => {
            if (pending.delete(client)) release(rinfo.address);
          }, PENDING_EXPIRY_MS);
          expiry.unref();
          pending.set(client, expiry);
        }
        try {
          pkgOnMessage.call(mainSocket, verdict.packet, rinfo);
        } catch (err) {
          log?.error({ err, client, file: verdict.rawName }, 'tftp: package refused a request it should accept');
          replyFromMain(rinfo, TFTP_ERR.undefined, TFTP_MSG.io);
          emit({ file: verdict.rawName, client, bytes: 0, ok: false, reason: 'io', error: String(err), durationMs: 0 });
        }
        return;
      case 'write':
        replyFromMain(rinfo, TFTP_ERR.accessViolation, TFTP_MSG.accessViolation);
        warnWriteRefused({ client, file: verdict.rawName });
        emit({ file: verdict.rawName, client, bytes: 0, ok: false, reason: 'write_denied', error: 'write requests are refused', durationMs: 0 });
        return;
      case 'traversal':
        replyFromMain(rinfo, TFTP_ERR.accessViolation, TFTP_MSG.accessViolation);
        warnOutsideRoot({ client, file: verdict.rawName });
        emit({ file: verdict.rawName, client, bytes: 0, ok: false, reason: 'traversal', error: 'path escapes the root', durationMs: 0 });
        return;
      case 'protocol':
        if (!verdict.silent) replyFromMain(rinfo, TFTP_ERR.illegalOperation, TFTP_MSG.illegalOperation);
        logGarbage(rinfo, verdict.why);
        if (verdict.rawName) {
          emit({ file: verdict.rawName, client, bytes: 0, ok: false, reason: 'protocol', error: verdict.why, durationMs: 0 });
        } else {
          counters.errors.protocol++;
        }
        return;
    }
  });

  server.on('error', (err: Error) => {
    log?.error({ err }, 'tftp: listening socket error');
  });

  function safeAbort(req: IncomingRequest, message: string): void {
    try {
      req.abort(message);
    } catch (err) {
      log?.error({ err }, 'tftp: abort failed');
    }
  }

  function writerOf(res: OutgoingResponse): PkgWriter {
    const w = (res as unknown as { _writer?: PkgWriter })._writer;
    if (!w || !w._socket || typeof w._address !== 'string' || typeof w._port !== 'number') {
      throw new Error('tftp: unexpected internals in the tftp package (response writer)');
    }
    return w;
  }

  /**
   * Everything that reaches a transfer socket passes here before the package. Returns a function that
   * marks the moment data may flow (before it, no ACK can be legitimate).
   */
  /**
   * RFC 7440 §4: an ACK inside the window says the client has every block up to it (a client whose receive ring took
   * only part of the window). The blocks after it go out now, and the progress resets the retry budget. Before, such
   * an ACK was dropped and the whole window resent on the timer: a client that took 8 blocks per burst never got past
   * the ninth. A duplicate or an ACK of nothing new waits for the timer (answering each one would multiply traffic).
   */
  function resumeAfterPartialAck(win: PkgWindow, block: number): void {
    const at = win._blocks.findIndex((b) => b.block === block);
    if (at < 0) return;
    win._blocks.splice(0, at + 1);
    win._writerTimer.reset();
    win._writerTimer.start(win._restransmitterSendFn);
    win._blocks.forEach(win._sendFn);
  }

  function guardTransfer(req: IncomingRequest, res: OutgoingResponse, file: string): () => void {
    const w = writerOf(res);
    const sock = w._socket;
    const listeners = sock.listeners('message');
    const pkgTransferOnMessage = listeners[0];
    if (listeners.length !== 1 || typeof pkgTransferOnMessage !== 'function') {
      throw new Error('tftp: unexpected internals in the tftp package (transfer socket listeners)');
    }
    sock.removeAllListeners('message');
    let started = false;
    sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      if (rinfo.address !== w._address || rinfo.port !== w._port) {
        // RFC 1350: a packet from a foreign TID gets error 5 and does not disturb the transfer.
        counters.foreignPackets++;
        if (msg.length >= 2 && msg.readUInt16BE(0) !== OP_ERROR) {
          sendQuietly(sock, errorPacket(TFTP_ERR.unknownTid, TFTP_MSG.unknownTid), rinfo);
        }
        return;
      }
      // The package reads the opcode without a length check: a 0- or 1-byte datagram would throw.
      if (msg.length < 4) return;
      const op = msg.readUInt16BE(0);
      if (op !== OP_ERROR) {
        if (!started) return;
        // While our OACK waits for its ACK 0, any other ACK is out of sequence (RFC 1350: ignore it); the package
        // would take it for a malformed message and end the transfer.
        if (op === OP_ACK && w._oackSent && (msg.length !== 4 || msg.readUInt16BE(2) !== 0)) return;
        if (op === OP_ACK && msg.length === 4 && !w._oackSent) {
          // The package resumes its window on any ACK in range: with no window outstanding it calls a null
          // callback, and a partial or duplicate ACK at the end of the file makes it close the transfer
          // before the lost blocks are resent. Only the ACK of the window's last block reaches it.
          const win = w._window;
          if (!win || !win._cb) return;
          const block = msg.readUInt16BE(2);
          if (block !== win._end) {
            resumeAfterPartialAck(win, block);
            return;
          }
        }
      }
      try {
        pkgTransferOnMessage.call(sock, msg, rinfo);
      } catch (err) {
        log?.error({ err, file, client: `${rinfo.address}:${rinfo.port}` }, 'tftp: transfer state error; aborting transfer');
        safeAbort(req, TFTP_MSG.illegalOperation);
      }
    });
    return () => {
      started = true;
    };
  }

  async function openInsideRoot(name: string): Promise<{ fh: FileHandle; size: number }> {
    const lexical = normaliseRequestName(name);
    if (!lexical.ok) throw new Failure('traversal', 'path escapes the root');
    const candidate = join(rootReal, lexical.name);
    if (!isInside(candidate, rootReal)) throw new Failure('traversal', 'path escapes the root');
    let real: string;
    try {
      real = await realpath(candidate);
    } catch (err) {
      throw new Failure(fsReason(err), (err as Error).message);
    }
    if (!allowed(real)) throw new Failure('traversal', 'symlink leads outside the root');
    let fh: FileHandle;
    try {
      // O_NONBLOCK: a FIFO in the root must not pin a thread-pool thread forever.
      fh = await open(real, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    } catch (err) {
      throw new Failure(fsReason(err), (err as Error).message);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new Failure('not_found', 'not a regular file');
      if (canVerifyFd) {
        // A directory on the path could have been swapped for a symlink between realpath() and open().
        const opened = await readlink(`/proc/self/fd/${fh.fd}`);
        if (!allowed(opened)) throw new Failure('traversal', 'path changed while opening');
      }
      return { fh, size: st.size };
    } catch (err) {
      await fh.close().catch(() => {});
      throw err instanceof Failure ? err : new Failure('io', (err as Error).message);
    }
  }

  function handleRequest(req: IncomingRequest, res: OutgoingResponse): void {
    const t0 = performance.now();
    const client = `${req.stats.remoteAddress}:${req.stats.remotePort}`;
    const file = req.file;
    let failure: Failure | null = null;
    let clientError: string | null = null;
    let sent = 0;
    let finished = false;
    let closed = false;
    let stream: ReadStream | null = null;
    // The client's error answered our OACK before it acknowledged it: it wanted the size (tsize), not the file.
    let declinedOffer = false;
    const offerPending = (): boolean => {
      try {
        return writerOf(res)._oackSent;
      } catch {
        return false;
      }
    };
    let resolveDone!: () => void;
    const entry = { req, done: new Promise<void>((r) => (resolveDone = r)) };
    active.add(entry);
    counters.active++;
    // The slot its request took at the listening port moves to the transfer.
    const address = req.stats.remoteAddress;
    const expiry = pending.get(client);
    if (expiry) {
      clearTimeout(expiry);
      pending.delete(client);
    } else take(address);

    const finish = (): void => {
      if (finished) return;
      finished = true;
      active.delete(entry);
      counters.active--;
      release(address);
      stream?.destroy();
      const durationMs = Math.round(performance.now() - t0);
      if (failure) {
        emit({ file, client, bytes: sent, ok: false, reason: failure.reason, error: failure.message, durationMs });
      } else if (clientError !== null && declinedOffer) {
        // PXE and UEFI firmware ask for tsize, read the size from the OACK and answer with an error, then ask again:
        // every healthy boot does it, so it is neither an error to count nor a warning.
        log?.info({ file, client, err: clientError }, 'tftp: the client declined the option offer (a size probe)');
      } else if (clientError !== null) {
        emit({ file, client, bytes: sent, ok: false, reason: 'aborted', error: clientError, durationMs });
        log?.warn({ file, client, bytesRead: sent, err: clientError }, 'tftp: transfer aborted');
      } else {
        counters.bytesSent += sent;
        emit({ file, client, bytes: sent, ok: true, durationMs });
      }
      resolveDone();
    };
    const fail = (f: Failure): void => {
      if (failure || finished) return;
      failure = f;
      if (closed) return finish();
      safeAbort(req, wireMessage(f.reason));
    };

    req.on('error', (err: Error) => {
      if (clientError === null) declinedOffer = offerPending();
      clientError ??= err.message || 'error';
    });
    req.on('abort', () => {
      clientError ??= 'aborted';
    });
    // The package emits 'error' or 'abort' synchronously right after 'close': decide one microtask later.
    req.on('close', () => {
      closed = true;
      queueMicrotask(finish);
    });
    res.on('error', (err: Error) => {
      clientError ??= err.message;
    });

    if (req.method !== 'GET') {
      fail(new Failure('write_denied', 'write requests are refused'));
      return;
    }
    const markStarted = guardTransfer(req, res, file);

    openInsideRoot(file).then(
      ({ fh, size }) => {
        if (closed || failure) {
          void fh.close().catch(() => {});
          return;
        }
        markStarted();
        res.setSize(size);
        if (size === 0) {
          void fh.close().catch(() => {});
          res.end();
          return;
        }
        const rs = createReadStream('', { fd: fh, start: 0, end: size - 1, highWaterMark: 256 * 1024 });
        stream = rs;
        rs.on('data', (chunk: Buffer | string) => {
          sent += chunk.length;
        });
        rs.on('error', (err: Error) => {
          fail(new Failure('io', err.message));
        });
        rs.on('end', () => {
          // A file truncated while being served would leave the package waiting forever for the last block.
          if (sent !== size) fail(new Failure('io', `file changed while serving (${sent} of ${size} bytes)`));
        });
        rs.pipe(res);
      },
      (err: unknown) => {
        const f = err instanceof Failure ? err : new Failure('io', String(err));
        if (f.reason === 'traversal') warnOutsideRoot({ client, file, why: f.message });
        fail(f);
      },
    );
  }

  await new Promise<void>((resolvePromise, reject) => {
    const onError = (err: Error): void => {
      server.removeListener('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.removeListener('error', onError);
      resolvePromise();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen();
  });

  const addr = mainSocket.address();
  log?.info({ address: addr.address, port: addr.port, root: rootReal, windowSize }, 'tftp: listening');

  let closePromise: Promise<void> | null = null;
  return {
    address: () => mainSocket.address(),
    stats: () => ({ ...counters, errors: { ...counters.errors } }),
    close: () => {
      closePromise ??= (async () => {
        closing = true;
        const socketClosed = new Promise<void>((r) => server.once('close', () => r()));
        server.close();
        const pending = [...active];
        for (const a of pending) safeAbort(a.req, TFTP_MSG.shuttingDown);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all([socketClosed, ...pending.map((a) => a.done)]),
          new Promise<void>((r) => (timer = setTimeout(r, CLOSE_GRACE_MS))),
        ]);
        clearTimeout(timer);
      })();
      return closePromise;
    },
  };
}

/** Where Debian's ipxe package puts the loaders; the caller passes it as the default root. */
export const IPXE_DIR = '/usr/lib/ipxe';
export const IPXE_DIR_SYMLINK_TARGETS = ['/boot/ipxe.efi', '/boot/ipxe.lkrn'];
