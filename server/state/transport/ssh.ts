import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { NodeSSH } from 'node-ssh';
import type { Logger } from '../../log.js';
import { RackseedError } from '../../model/errors.js';
import type { ExecOptions, ExecResult, Transport, WriteOptions } from '../types.js';
import { CappedOutput, outputLimit, stoppedWithOutput } from './capped-output.js';
import { fingerprint, findPinnedKey, hostKeyAlgorithms, parsePublicKey, sameKey, type PublicKey } from './known-hosts.js';
import { loginShellLine, PID_MARK } from './login-shell.js';

/**
 * The SSH transport: one connection per node, opened once with the node's host key pinned (never trusted on first
 * use), reused for every command of the run. Each command is its own channel with its own timeout; a lost
 * connection fails every pending and later call with STATE_TRANSPORT and the reason, and touches no other node.
 */

export interface SshTransportOptions {
  /** The node's name, for errors and logs. */
  target: string;
  host: string;
  port?: number;
  username?: string;
  /** The private key itself (OpenSSH/PEM text) or the path of its file. */
  privateKey: string;
  /** The pin made at provisioning: `ssh-ed25519 AAAA...` (a known_hosts line works too). Missing: refused. */
  knownHostKey: string | undefined;
  connectTimeoutMs?: number;
  /** Keepalive probe interval; three unanswered probes drop the connection. */
  keepaliveIntervalMs?: number;
  /** Channels open at once on the connection (OpenSSH's MaxSessions defaults to 10). */
  maxChannels?: number;
  /** Limit for readFile/writeFile (a hung mount must not hang the run); commands take theirs per call. */
  fileTimeoutMs?: number;
  /**
   * Aborted while connecting (the caller gave up: `rackseed exec` cancelled): the half-open connection is closed and
   * the call rejects with STATE_CANCELLED at once, not at the connect timeout. Only the connect: commands take theirs.
   */
  signal?: AbortSignal;
  log?: Logger;
}

/** The part of ssh2's Client and Channel this file uses (ssh2 ships no types). */
interface Ssh2Channel {
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'exit', listener: (code: number | null, signal?: string) => void): this;
  on(event: 'close', listener: () => void): this;
  stderr: { on(event: 'data', listener: (chunk: Buffer) => void): unknown };
  end(data?: Buffer | string): void;
  close(): void;
}
interface Ssh2Client {
  exec(command: string, callback: (err: Error | undefined, channel: Ssh2Channel) => void): boolean;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'close' | 'end', listener: () => void): this;
  setNoDelay(noDelay: boolean): this;
  end(): void;
  destroy(): void;
}

/** A channel refused at the session limit is asked for again this many times, after 25 ms, 50 ms, ... */
const OPEN_RETRIES = 8;
const OPEN_RETRY_BASE_MS = 25;
/**
 * How long close() waits for the kills of stopped commands to reach the node: the kill channel's every retry
 * (6.4 s in all), and then some for the kill itself. Were it shorter, close() would end the connection while the
 * kill still waited for a channel, and the command would run on until the node's own limit.
 */
const KILL_WAIT_MS = OPEN_RETRY_BASE_MS * (2 ** OPEN_RETRIES - 1) + 3_000;

/** readFile's exit code for "no such file", chosen outside what cat and sh use. */
const MISSING = 44;

/**
 * What one command may print per stream before the rest is dropped: a command that prints without end (`yes`, a
 * follow of a log) grew the server's memory by hundreds of MB a second until the OOM killer took it down, DHCP and
 * every other node's run with it. A file read beyond it is an error rather than a cut file.
 */
export const OUTPUT_LIMIT_BYTES = 32 * 1024 * 1024;
/** Startup noise kept while looking for the PID line; beyond it the PID is given up on. */
const PID_SEARCH_BYTES = 64 * 1024;
/** The node's own limit runs this long after the server's, which therefore reports the timeout in the normal case. */
const NODE_TIMEOUT_GRACE_SECONDS = 15;

const DEFAULTS = { port: 22, username: 'root', connectTimeoutMs: 10_000, keepaliveIntervalMs: 15_000, maxChannels: 8, fileTimeoutMs: 120_000 };

function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Opens the connection; rejects SSH_HOST_KEY_UNKNOWN / SSH_HOST_KEY_MISMATCH before any command could run. */
export async function openSshTransport(options: SshTransportOptions): Promise<SshTransport> {
  const { target, host } = options;
  const port = options.port ?? DEFAULTS.port;
  const pin = pinnedKey(options);
  let presented: Buffer | undefined;
  const { signal } = options;
  const cancelled = () => new RackseedError('STATE_CANCELLED', `${target}: cancelled while connecting to ${host}:${port}`, { target, host, port });
  if (signal?.aborted) throw cancelled();
  const ssh = new NodeSSH();
  // node-ssh sets `connection` before its first await: destroying its socket ends the handshake, which then rejects.
  const onAbort = (): void => void (ssh.connection as unknown as Ssh2Client | null)?.destroy();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await ssh.connect({
      host,
      port,
      username: options.username ?? DEFAULTS.username,
      privateKey: privateKeyText(options.privateKey),
      readyTimeout: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      keepaliveInterval: options.keepaliveIntervalMs ?? DEFAULTS.keepaliveIntervalMs,
      keepaliveCountMax: 3,
      // Ask for the pinned key's type only: a server with several host keys must not present another one.
      algorithms: { serverHostKey: hostKeyAlgorithms(pin.type) as never },
      hostVerifier: (key: Buffer) => {
        presented = Buffer.from(key);
        return sameKey(key, pin.blob);
      },
    });
  } catch (error) {
    ssh.dispose();
    throw signal?.aborted ? cancelled() : connectError(options, port, pin, presented, error);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  // Aborted as the handshake finished: the caller has gone, so the connection goes too.
  if (signal?.aborted) {
    ssh.dispose();
    throw cancelled();
  }
  options.log?.debug({ node: target, host, port }, 'ssh connected');
  return new SshTransport(target, ssh.connection as unknown as Ssh2Client, {
    maxChannels: options.maxChannels ?? DEFAULTS.maxChannels,
    fileTimeoutMs: options.fileTimeoutMs ?? DEFAULTS.fileTimeoutMs,
    ...(options.log ? { log: options.log } : {}),
  });
}

/** A node's pin from a known_hosts file as server/services/node-identity.ts writes it (by name, then address). */
export function pinnedKeyFromKnownHosts(file: string, names: readonly string[], port = 22): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const key = findPinnedKey(text, names, port);
  return key && `${key.type} ${key.blob.toString('base64')}`;
}

function pinnedKey(options: SshTransportOptions): PublicKey {
  const { target, host } = options;
  if (!options.knownHostKey?.trim()) {
    throw new RackseedError('SSH_HOST_KEY_UNKNOWN', `${target}: no pinned host key, refusing to connect to ${host} (keys are pinned when the node is provisioned)`, {
      target,
      host,
    });
  }
  try {
    return parsePublicKey(options.knownHostKey);
  } catch (error) {
    throw new RackseedError('SSH_HOST_KEY_UNKNOWN', `${target}: the pinned host key is unusable: ${(error as Error).message}`, { target, host });
  }
}

function privateKeyText(key: string): string {
  return key.includes('PRIVATE KEY-----') ? key : readFileSync(key, 'utf8');
}

function connectError(options: SshTransportOptions, port: number, pin: PublicKey, presented: Buffer | undefined, error: unknown): RackseedError {
  const { target, host } = options;
  const expected = fingerprint(pin.blob);
  if (presented && !sameKey(presented, pin.blob)) {
    const got = fingerprint(presented);
    return new RackseedError(
      'SSH_HOST_KEY_MISMATCH',
      `${target}: host key mismatch at ${host}:${port}: pinned ${pin.type} ${expected}, presented ${got}; refusing to run (a reinstalled node or another machine on its address)`,
      { target, host, port, expected, presented: got },
    );
  }
  const reason = error instanceof Error ? error.message : String(error);
  if (!presented && /host key/i.test(reason)) {
    return new RackseedError('SSH_HOST_KEY_MISMATCH', `${target}: ${host}:${port} has no ${pin.type} host key (pinned ${expected}); refusing to run`, {
      target,
      host,
      port,
      expected,
      reason,
    });
  }
  return new RackseedError('STATE_TRANSPORT', `${target}: cannot connect to ${host}:${port}: ${reason}`, { target, host, port, reason }, { cause: error });
}

/** A counting semaphore: at most `size` channels open at once. */
class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(size: number) {
    this.free = Math.max(1, size);
  }

  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

interface RawResult {
  code: number;
  stdout: Buffer;
  stderr: Buffer;
  /** Bytes beyond the limit, counted and dropped. */
  droppedStdout: number;
  droppedStderr: number;
  /** As UTF-8, without a character the limit cut in two. */
  stdoutText: () => string;
  stderrText: () => string;
}

export class SshTransport implements Transport {
  private failure: RackseedError | undefined;
  private readonly pending = new Set<(error: RackseedError) => void>();
  /**
   * Kills of stopped (timed-out, cancelled) commands still on their way, and those still waiting for their command's
   * PID: close() lets them arrive before it ends the connection.
   */
  private readonly kills = new Set<Promise<void>>();
  /** Settles when the connection is lost: a kill can no longer arrive, and close() stops waiting for one. */
  private readonly lost: Promise<void>;
  private markLost: () => void = () => undefined;
  private readonly slots: Slots;
  private readonly fileTimeoutMs: number;
  private readonly log: Logger | undefined;

  constructor(
    readonly target: string,
    private readonly client: Ssh2Client,
    options: { maxChannels: number; fileTimeoutMs: number; log?: Logger },
  ) {
    this.slots = new Slots(options.maxChannels);
    this.fileTimeoutMs = options.fileTimeoutMs;
    this.log = options.log;
    this.lost = new Promise<void>((resolve) => (this.markLost = resolve));
    // ssh2 leaves Nagle on: every command's small packets would wait out the peer's delayed ACK (~40 ms each).
    client.setNoDelay(true);
    client.on('error', (error) => this.fail(`connection lost: ${error.message}`));
    client.on('close', () => this.fail('connection closed by the node'));
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.run(command, command, options);
    const result: ExecResult = { code: r.code, stdout: r.stdoutText(), stderr: r.stderrText() };
    if (r.droppedStdout === 0 && r.droppedStderr === 0) return result;
    result.dropped = { stdout: r.droppedStdout, stderr: r.droppedStderr };
    // A caller that set its own limit reports the cut its own way; the others (states) show stderr as it is.
    if (options.outputLimitBytes === undefined) {
      const note = (stream: string, bytes: number) => (bytes > 0 ? `\n[rackseed: ${stream} cut at ${OUTPUT_LIMIT_BYTES} bytes; ${bytes} more were dropped]\n` : '');
      result.stderr += note('stdout', r.droppedStdout) + note('stderr', r.droppedStderr);
    }
    return result;
  }

  async readFile(path: string): Promise<Buffer | undefined> {
    const p = shellQuote(path);
    // One round trip; stdout arrives as raw bytes, so binary files need no encoding.
    const r = await this.run(`if [ -e ${p} ]; then exec cat -- ${p}; else exit ${MISSING}; fi`, `read ${path}`, { timeoutMs: this.fileTimeoutMs });
    if (r.code === MISSING) return undefined;
    if (r.code !== 0) throw this.fileError('read', path, r);
    if (r.droppedStdout > 0) {
      throw new RackseedError('STATE_FILE_IO', `${this.target}: cannot read ${path}: larger than ${OUTPUT_LIMIT_BYTES} bytes, the most a state reads from a node`, { target: this.target, path });
    }
    return r.stdout;
  }

  async writeFile(path: string, data: string | Buffer, options: WriteOptions = {}): Promise<void> {
    const r = await this.run(writeScript(path, options), `write ${path}`, { stdin: data, timeoutMs: this.fileTimeoutMs });
    if (r.code !== 0) throw this.fileError('write', path, r);
  }

  async close(): Promise<void> {
    // A caller that closes right after a timeout or a cancel (one command per connection: rackseed exec) would
    // otherwise end the connection before the kill's channel opened, or before the command's PID arrived, and the
    // command would run on. Bounded: the node may stop answering. A kill waiting for its PID adds the kill itself
    // when the PID comes, hence the loop. A lost connection ends the wait at once: nothing more can be sent.
    const deadline = Date.now() + KILL_WAIT_MS;
    while (this.kills.size > 0 && !this.failure && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      const timeUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, deadline - Date.now())));
      await Promise.race([Promise.allSettled([...this.kills]), timeUp, this.lost]);
      clearTimeout(timer);
    }
    if (!this.failure) {
      this.fail('transport closed');
      this.client.end();
    }
  }

  private fileError(op: string, path: string, r: RawResult): RackseedError {
    const stderr = r.stderr.toString('utf8').trim();
    return new RackseedError('STATE_FILE_IO', `${this.target}: cannot ${op} ${path}: ${stderr || `exit code ${r.code}`}`, { target: this.target, path, code: r.code, stderr });
  }

  /** Marks the connection dead; every pending call rejects now and every later one at once. */
  private fail(reason: string): void {
    if (this.failure) return;
    this.failure = new RackseedError('STATE_TRANSPORT', `${this.target}: ${reason}`, { target: this.target, reason });
    this.markLost();
    if (reason !== 'transport closed') this.log?.warn({ node: this.target, reason }, 'ssh connection lost');
    for (const reject of [...this.pending]) reject(this.failure);
    this.pending.clear();
  }

  /**
   * Runs one script under `sh -c` on its own channel, whatever root's login shell is (./login-shell.ts: how the
   * command gets past it, prints the PID a timeout kills, and is bounded on the node too). `label` names it in
   * errors (never the script or stdin).
   */
  private async run(script: string, label: string, options: ExecOptions): Promise<RawResult> {
    if (this.failure) throw this.failure;
    if (options.signal?.aborted) throw this.cancelled(label);
    const limitBytes = outputLimit(options.outputLimitBytes, OUTPUT_LIMIT_BYTES);
    const limit = options.timeoutMs !== undefined ? Math.ceil(options.timeoutMs / 1000) + NODE_TIMEOUT_GRACE_SECONDS : undefined;
    let line: string;
    try {
      line = loginShellLine(script, limit);
    } catch (error) {
      if (!(error instanceof RackseedError)) throw error;
      throw new RackseedError(error.code, `${this.target}: ${error.message}: ${label.slice(0, 200)}`, { ...error.details, target: this.target, command: label });
    }
    const release = await this.slots.acquire();
    try {
      if (this.failure) throw this.failure;
      if (options.signal?.aborted) throw this.cancelled(label);
      return await this.runOnChannel(line, label, options, limitBytes);
    } finally {
      release();
    }
  }

  private runOnChannel(line: string, label: string, options: ExecOptions, limitBytes: number): Promise<RawResult> {
    const started = Date.now();
    const { signal } = options;
    return new Promise<RawResult>((resolve, reject) => {
      let settled = false;
      /** Timed out or cancelled: the command is killed as soon as its PID is known. */
      let stopped = false;
      let remotePid: number | undefined;
      let channel: Ssh2Channel | undefined;
      let timer: NodeJS.Timeout | undefined;
      /** Ends close()'s wait for a command stopped before its PID line arrived. */
      let pidAwaited: (() => void) | undefined;
      // Out here, not in the channel's callback: a stopped command's error carries what it printed until then.
      const stdout = new CappedOutput(limitBytes);
      const stderr = new CappedOutput(limitBytes);
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.pending.delete(onFailure);
        outcome();
      };
      const onFailure = (error: RackseedError): void => settle(() => reject(error));
      this.pending.add(onFailure);
      const closeChannel = (): void => {
        try {
          channel?.close();
        } catch {
          // The channel is already gone.
        }
      };
      const kill = (pid: number): void => {
        const sent = this.killRemote(pid);
        closeChannel();
        void sent.then(() => pidAwaited?.());
      };
      const stop = (error: RackseedError): void => {
        if (settled) return;
        stopped = true;
        if (remotePid !== undefined) kill(remotePid);
        else {
          // The channel stays open until the PID line comes: closed now, the line could be lost on its way, and the
          // command would run on until the node's own limit, which for a cancel is the whole timeout.
          const awaited = new Promise<void>((done) => (pidAwaited = done));
          this.kills.add(awaited);
          void awaited.then(() => this.kills.delete(awaited));
        }
        // Startup noise still held back with the PID line (`head`) is left out: the command had not started then.
        settle(() => reject(stoppedWithOutput(error, stdout, stderr, options.outputLimitBytes)));
      };
      const onAbort = (): void => stop(this.cancelled(label));
      signal?.addEventListener('abort', onAbort, { once: true });

      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          stop(
            new RackseedError('STATE_TIMEOUT', `${this.target}: command timed out after ${options.timeoutMs} ms: ${label}`, {
              target: this.target,
              command: label,
              timeoutMs: options.timeoutMs,
            }),
          );
        }, options.timeoutMs);
      }

      this.openChannel(
        line,
        (ch) => {
          channel = ch;
          let head: Buffer | undefined = Buffer.alloc(0);
          let code: number | undefined;
          ch.on('data', (chunk: Buffer) => stdout.push(chunk));
          ch.stderr.on('data', (chunk: Buffer) => {
            if (!head) {
              stderr.push(chunk);
              return;
            }
            head = Buffer.concat([head, chunk]);
            const found = findPidLine(head);
            if (!found) {
              if (head.length > PID_SEARCH_BYTES) {
                stderr.push(head);
                head = undefined;
                // No PID to kill: closing the channel is all that is left.
                if (stopped) {
                  closeChannel();
                  pidAwaited?.();
                }
              }
              return;
            }
            remotePid = found.pid;
            // What the startup files printed stays, as it was; only the marked line goes.
            stderr.push(head.subarray(0, found.start));
            stderr.push(head.subarray(found.end));
            head = undefined;
            if (stopped) kill(remotePid);
          });
          ch.on('exit', (exitCode, exitSignal) => {
            code = exitCode ?? 128 + (exitSignal ? signalNumber(exitSignal) : 127);
          });
          ch.on('close', () => {
            // The command ended, or the connection did: either way nothing is left to wait for but a kill on its way.
            if (remotePid === undefined) pidAwaited?.();
            if (code === undefined) {
              // No exit status: the connection is going down. Its close event names the reason; wait one turn for it.
              setImmediate(() => settle(() => reject(this.failure ?? new RackseedError('STATE_TRANSPORT', `${this.target}: channel closed without an exit status`, { target: this.target, command: label }))));
              return;
            }
            // No PID line came: everything on stderr is still in `head`.
            if (head && head.length > 0) stderr.push(head);
            const result = {
              code,
              stdout: stdout.bytes(),
              stderr: stderr.bytes(),
              droppedStdout: stdout.dropped,
              droppedStderr: stderr.dropped,
              stdoutText: () => stdout.text(),
              stderrText: () => stderr.text(),
            };
            this.log?.debug({ node: this.target, command: label.slice(0, 200), code, ms: Date.now() - started }, 'ssh exec');
            settle(() => resolve(result));
          });
          ch.end(options.stdin);
        },
        (error: RackseedError) => {
          pidAwaited?.();
          settle(() => reject(error));
        },
      );
    });
  }

  private cancelled(label: string): RackseedError {
    return new RackseedError('STATE_CANCELLED', `${this.target}: command cancelled: ${label}`, { target: this.target, command: label });
  }

  /**
   * Opens an exec channel; retries while the server is at its session limit (closing sessions still count).
   * `onOpen` runs synchronously in ssh2's callback: a fast command's exit status can arrive in the same packet
   * batch, and an 'exit' listener attached a microtask later would miss it.
   */
  private openChannel(command: string, onOpen: (ch: Ssh2Channel) => void, onError: (error: RackseedError) => void): void {
    const attempt = (n: number): void => {
      if (this.failure) {
        onError(this.failure);
        return;
      }
      const refused = (reason: string): RackseedError =>
        this.failure ?? new RackseedError('STATE_TRANSPORT', `${this.target}: cannot open a channel: ${reason}`, { target: this.target, reason });
      try {
        this.client.exec(command, (error, ch) => {
          if (!error) onOpen(ch);
          else if (!this.failure && /open failed/i.test(error.message) && n < OPEN_RETRIES) setTimeout(() => attempt(n + 1), OPEN_RETRY_BASE_MS * 2 ** n);
          else onError(refused(error.message));
        });
      } catch (error) {
        onError(refused((error as Error).message));
      }
    };
    attempt(0);
  }

  /** Kills a stopped command's process group over a channel of its own; best effort. Settles when it was sent or cannot be. */
  private killRemote(pid: number): Promise<void> {
    const kill = new Promise<void>((done) => {
      // Run by /bin/sh, not by the login shell: no `--`, which dash's kill takes for a PID and refuses.
      this.openChannel(
        loginShellLine(`kill -KILL -${pid} ${pid} 2>/dev/null; true`),
        (ch) => {
          ch.on('data', () => {});
          ch.stderr.on('data', () => {});
          ch.on('close', () => done());
          ch.end();
        },
        // The connection is gone: so is the command.
        () => done(),
      );
    });
    this.kills.add(kill);
    void kill.then(() => this.kills.delete(kill));
    return kill;
  }
}

/**
 * One shell script that writes stdin to a temporary file next to the target, gives it the old file's owner, then the
 * requested owner, then the requested mode (else the old file's mode, or 0644 for a new file), and renames it over
 * the target: a reader sees the old file or the new one, never a part. A symlink is written through, as Salt does.
 * The temporary file stays 0600 until its final mode is set: a file asked to be 0600 holds a secret (a join token),
 * and a passing 0644 would let any local user open it and keep reading.
 */
export function writeScript(path: string, options: WriteOptions): string {
  if (options.mode !== undefined && !/^[0-7]{3,4}$/.test(options.mode)) {
    throw new RackseedError('STATE_FILE_IO', `mode ${JSON.stringify(options.mode)} for ${path} is not an octal mode such as '0644'`, { path, mode: options.mode });
  }
  const tmpSuffix = `.rackseed-tmp-${randomBytes(6).toString('hex')}`;
  const owner = options.owner || options.group ? `${options.owner ?? ''}${options.group ? `:${options.group}` : ''}` : undefined;
  return [
    'set -e',
    `p=${shellQuote(path)}`,
    'if [ -L "$p" ]; then p=$(readlink -f -- "$p"); fi',
    `t="$p"${tmpSuffix}`,
    `trap 'rm -f -- "$t"' EXIT`,
    'umask 077',
    'cat > "$t"',
    'if [ -e "$p" ]; then chown --reference="$p" -- "$t"; fi',
    // chown before chmod: changing the owner clears setuid/setgid bits the mode may ask for.
    ...(owner ? [`chown -- ${shellQuote(owner)} "$t"`] : []),
    options.mode ? `chmod ${options.mode} -- "$t"` : 'if [ -e "$p" ]; then chmod --reference="$p" -- "$t"; else chmod 0644 -- "$t"; fi',
    'mv -f -- "$t" "$p"',
    'trap - EXIT',
  ].join('\n');
}

/** ssh2 names the signal with or without its SIG prefix depending on the peer: its number, 0 when unknown. */
function signalNumber(signal: string): number {
  const name = (signal.startsWith('SIG') ? signal : `SIG${signal}`) as NodeJS.Signals;
  return osConstants.signals[name] ?? 0;
}

/** The marked PID line in what stderr has brought so far: its PID and where the line starts and ends. */
function findPidLine(head: Buffer): { pid: number; start: number; end: number } | undefined {
  const mark = Buffer.from(PID_MARK, 'latin1');
  for (let from = 0; ; ) {
    const at = head.indexOf(mark, from);
    if (at < 0) return undefined;
    const nl = head.indexOf(10, at);
    if (nl < 0) return undefined;
    if (at === 0 || head[at - 1] === 10) {
      const pid = Number(head.subarray(at + mark.length, nl).toString('latin1'));
      if (Number.isInteger(pid) && pid > 1) return { pid, start: at, end: nl + 1 };
    }
    from = nl + 1;
  }
}
