import { spawnSync, type ChildProcess } from 'node:child_process';

/** Resolves on the first stdout/stderr output matching `re`; rejects if the process exits or time runs out. */
export function waitForOutput(child: ChildProcess, re: RegExp, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer): void => {
      seen += d.toString();
      if (re.test(seen)) finish(null);
    };
    const onExit = (code: number | null): void => finish(new Error(`${what} exited (code ${code}) before it was ready:\n${seen.slice(-2000)}`));
    const timer = setTimeout(() => finish(new Error(`${what} not ready after ${timeoutMs} ms:\n${seen.slice(-2000)}`)), timeoutMs);
    const finish = (err: Error | null): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Fails with the apt-get line to run when a real peer is missing (no skipped tests). */
export function requireBinary(bin: string, aptLine: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin} is not installed; this test needs it as a real peer. Run: ${aptLine}`);
}

/** Whether a process (one the test started, by PID) still exists. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
