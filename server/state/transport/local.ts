import { execFile, spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, open, readFile, readlink, realpath, rename, rm, stat } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import { constants as osConstants } from 'node:os';
import { promisify } from 'node:util';
import { RackseedError } from '../../model/errors.js';
import type { ExecOptions, ExecResult, Transport, WriteOptions } from '../types.js';
import { commandTooLong, MAX_ARGUMENT_BYTES } from './argument-limit.js';
import { CappedOutput, outputLimit, stoppedWithOutput } from './capped-output.js';

const execFileAsync = promisify(execFile);

/**
 * The transport for the machine rackseed itself runs on: commands through `sh -c`, files through fs. Same contract
 * as the SSH transport (timeouts kill the whole command, writes are atomic renames, a closed transport refuses).
 */
export class LocalTransport implements Transport {
  private closed = false;
  private readonly running = new Set<ChildProcess>();

  constructor(readonly target = 'localhost') {}

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.assertOpen();
      if (options.signal?.aborted) throw this.cancelled(command);
      // The command is one argument of sh: refused here, with what to do instead, rather than as spawn's bare E2BIG.
      const bytes = Buffer.byteLength(command, 'utf8');
      if (bytes > MAX_ARGUMENT_BYTES) throw this.tooLong(command, bytes, MAX_ARGUMENT_BYTES);
      let child: ChildProcessWithoutNullStreams;
      try {
        child = spawnShell(command);
      } catch (error) {
        // Under the one-argument limit execve may still refuse: all arguments and the environment exceed ARG_MAX.
        if ((error as NodeJS.ErrnoException).code === 'E2BIG') throw this.tooLong(command, bytes, undefined);
        throw error;
      }
      this.running.add(child);
      // Unbounded unless the caller sets a limit: this machine's own commands, as before.
      const stdout = new CappedOutput(outputLimit(options.outputLimitBytes, Number.MAX_SAFE_INTEGER));
      const stderr = new CappedOutput(outputLimit(options.outputLimitBytes, Number.MAX_SAFE_INTEGER));
      let timedOut = false;
      const stop = (error: RackseedError): void => {
        if (timedOut) return;
        timedOut = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        killGroup(child);
        // What it printed up to now: the lines before a hang show where it hung.
        reject(stoppedWithOutput(error, stdout, stderr, options.outputLimitBytes));
      };
      const onAbort = (): void => stop(this.cancelled(command));
      const timer =
        options.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              stop(new RackseedError('STATE_TIMEOUT', `${this.target}: command timed out after ${options.timeoutMs} ms: ${command}`, { target: this.target, command, timeoutMs: options.timeoutMs }));
            }, options.timeoutMs);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      // A command that exits without reading its stdin closes the pipe under us: not an error.
      child.stdin.on('error', () => {});
      child.once('error', (error) => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.running.delete(child);
        reject(new RackseedError('STATE_TRANSPORT', `${this.target}: cannot run sh: ${error.message}`, { target: this.target, command }, { cause: error }));
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.running.delete(child);
        if (timedOut) return;
        if (this.closed) {
          reject(new RackseedError('STATE_TRANSPORT', `${this.target}: transport closed`, { target: this.target, command }));
          return;
        }
        const exitCode = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 127);
        const result: ExecResult = { code: exitCode, stdout: stdout.text(), stderr: stderr.text() };
        if (stdout.dropped > 0 || stderr.dropped > 0) result.dropped = { stdout: stdout.dropped, stderr: stderr.dropped };
        resolve(result);
      });
      child.stdin.end(options.stdin);
    });
  }

  async readFile(path: string): Promise<Buffer | undefined> {
    this.assertOpen();
    try {
      return await readFile(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw this.fileError('read', path, error);
    }
  }

  async writeFile(path: string, data: string | Buffer, options: WriteOptions = {}): Promise<void> {
    this.assertOpen();
    if (options.mode !== undefined && !/^[0-7]{3,4}$/.test(options.mode)) {
      throw new RackseedError('STATE_FILE_IO', `mode ${JSON.stringify(options.mode)} for ${path} is not an octal mode such as '0644'`, { path, mode: options.mode });
    }
    let tmp: string | undefined;
    try {
      const target = await resolveLink(path);
      tmp = `${target}.rackseed-tmp-${randomBytes(6).toString('hex')}`;
      const file = await open(tmp, 'wx', 0o600);
      try {
        await file.writeFile(data);
        await file.sync();
      } finally {
        await file.close();
      }
      const old = await stat(target).catch(() => undefined);
      if (old) await chown(tmp, old.uid, old.gid);
      // Names, not numbers: only chown(1) resolves them (Node has no getpwnam). Before chmod: chown clears setuid.
      if (options.owner || options.group) await execFileAsync('chown', ['--', `${options.owner ?? ''}${options.group ? `:${options.group}` : ''}`, tmp]);
      // One chmod, to the final mode: the file stays 0600 until then (a file asked to be 0600 holds a secret).
      await chmod(tmp, options.mode ? parseInt(options.mode, 8) : old ? old.mode & 0o7777 : 0o644);
      await rename(tmp, target);
    } catch (error) {
      if (tmp) await rm(tmp, { force: true });
      throw this.fileError('write', path, error);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const child of this.running) killGroup(child);
  }

  private tooLong(command: string, bytes: number, maxBytes: number | undefined): RackseedError {
    const error = commandTooLong(bytes, maxBytes);
    return new RackseedError(error.code, `${this.target}: ${error.message}: ${command.slice(0, 200)}`, { ...error.details, target: this.target, command });
  }

  private cancelled(command: string): RackseedError {
    return new RackseedError('STATE_CANCELLED', `${this.target}: command cancelled: ${command}`, { target: this.target, command });
  }

  private assertOpen(): void {
    if (this.closed) throw new RackseedError('STATE_TRANSPORT', `${this.target}: transport closed`, { target: this.target });
  }

  private fileError(op: string, path: string, error: unknown): RackseedError {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    const reason = (e.stderr?.trim() || e.message) ?? String(error);
    return new RackseedError('STATE_FILE_IO', `${this.target}: cannot ${op} ${path}: ${reason}`, { target: this.target, path, reason }, { cause: error });
  }
}

/** A symlink is written through (the link stays, its target changes), as Salt does. */
async function resolveLink(path: string): Promise<string> {
  const info = await lstat(path).catch(() => undefined);
  if (!info?.isSymbolicLink()) return path;
  // A dangling link has no realpath: write where it points, like `readlink -f`.
  return realpath(path).catch(async () => resolvePath(dirname(path), await readlink(path)));
}

/** Its own process group, so a timeout kills the command and everything it started, not just the shell. */
function spawnShell(command: string): ChildProcessWithoutNullStreams {
  return spawn('sh', ['-c', command], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // The group is already gone.
  }
}
