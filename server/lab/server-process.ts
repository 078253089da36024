import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Netns } from './netns.js';

/**
 * The lab's rackseed server: `rackseed serve --config` started exactly as an operator would, inside the lab's
 * namespace (DHCP must bind UDP 67 there), its output going to a log file in the lab directory rather than to this
 * process, so it keeps running (and `lab down` can stop it) even if the process that started it dies.
 */

/** How to run this package's CLI in a child: the compiled entry point, or the TypeScript one through tsx. */
export function cliCommand(): string[] {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) {
    // Running from source (development, tests): only then is tsx (a development dependency) needed and present.
    return ['--import', import.meta.resolve('tsx'), path.resolve(path.dirname(here), '../cli/main.ts')];
  }
  return [path.resolve(path.dirname(here), '../cli/main.js')];
}

export interface LabServer {
  child: ChildProcess;
  pid: number;
  logFile: string;
  log(): string;
  stop(): Promise<void>;
}

/** Starts the server and resolves once HTTP, DHCP and TFTP listen; rejects with the log's tail otherwise. */
export async function startLabServer(netns: Netns, ns: string, dir: string, onSpawn: (pid: number) => void, timeoutMs = 60_000): Promise<LabServer> {
  const logFile = path.join(dir, 'server.log');
  const fd = openSync(logFile, 'w');
  let child: ChildProcess;
  try {
    child = netns.spawn(ns, process.execPath, [...cliCommand(), 'serve', '--config', path.join(dir, 'rackseed.yaml')], { cwd: dir, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start rackseed serve');
  onSpawn(pid);
  const log = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const ready = [/"msg":"HTTP listening"/, /"msg":"DHCP listening"/, /tftp: listening/];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = log();
    if (ready.every((r) => r.test(text))) break;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`rackseed serve exited (${child.exitCode ?? child.signalCode}); the end of ${logFile}:\n${text.slice(-3000)}`);
    if (Date.now() > deadline) {
      await netns.stop(child);
      throw new Error(`rackseed serve did not start within ${timeoutMs / 1000} s; the end of ${logFile}:\n${text.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, pid, logFile, log, stop: () => netns.stop(child, 'SIGTERM', 15_000) };
}
