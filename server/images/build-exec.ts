import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { RackseedError } from '../model/errors.js';

/** The last lines of a tool's stderr: enough to say why it failed, short enough for a one-line CLI error. */
export function tail(text: string, lines = 3): string {
  return text.trim().split('\n').slice(-lines).join(' | ');
}

/** Resolves with the exit code (signals count as failure) once the process is gone; collects its stderr. */
export function exited(child: ChildProcess): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    // Bounded: a chatty tool must not hold the whole log in memory.
    stderr = (stderr + d.toString()).slice(-16_384);
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stderr }));
  });
}

/** Runs a tool to completion; a non-zero exit is an IMAGE_BUILD_FAILED error carrying its stderr. */
export async function run(cmd: string, args: string[], opts: SpawnOptions & { onLine?: (line: string) => void } = {}): Promise<string> {
  const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let partial = '';
  const feed = (d: Buffer): void => {
    if (!opts.onLine) return;
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) opts.onLine(l);
  };
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
    feed(d);
  });
  child.stderr?.on('data', feed);
  let result: { code: number; stderr: string };
  try {
    result = await exited(child);
  } catch (cause) {
    throw new RackseedError('IMAGE_BUILD_FAILED', `${cmd}: cannot run (${(cause as Error).message})`, { cmd }, { cause });
  }
  if (result.code !== 0) {
    throw new RackseedError('IMAGE_BUILD_FAILED', `${cmd} failed with exit code ${result.code}: ${tail(result.stderr || stdout)}`, { cmd, args, code: result.code });
  }
  return stdout;
}
