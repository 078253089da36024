import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TSX_IMPORT } from '../support/tsx.js';

const CHILD = fileURLToPath(new URL('../support/progress-until-signal.ts', import.meta.url));
const HIDE = '\x1b[?25l';
const SHOW = '\x1b[?25h';

/**
 * A progress bar on a real pseudo-terminal (util-linux `script`), interrupted the way an operator does: the
 * terminal's cursor must be shown again, and the process must still die of the signal (status 128 + N).
 */
async function interrupt(kind: 'image' | 'phases', signal: NodeJS.Signals): Promise<{ output: string; code: number | null }> {
  const command = `exec node --import ${TSX_IMPORT} ${CHILD} ${kind}`;
  // -e: script exits with the child's status; -f: output as it comes; /dev/null: no typescript file.
  const script = spawn('script', ['-qefc', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let output = '';
  script.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = new Promise<number | null>((resolve) => script.once('exit', (code) => resolve(code)));
  try {
    const pid = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready line from the child; it wrote: ${JSON.stringify(output)}`)), 30_000);
      script.stdout.on('data', () => {
        const m = /ready (\d+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    });
    process.kill(pid, signal);
    const code = await exited;
    return { output, code };
  } finally {
    if (script.exitCode === null && script.pid !== undefined) script.kill('SIGKILL');
  }
}

describe('a progress bar interrupted on a terminal', () => {
  it.each([
    ['image', 'SIGINT', 130],
    ['phases', 'SIGINT', 130],
    ['phases', 'SIGTERM', 143],
  ] as const)('%s bars, %s: the cursor is shown again and the process dies of the signal (%i)', async (kind, signal, status) => {
    const { output, code } = await interrupt(kind, signal);
    const hidden = output.indexOf(HIDE);
    expect(hidden).toBeGreaterThanOrEqual(0);
    expect(output.lastIndexOf(SHOW)).toBeGreaterThan(hidden);
    expect(code).toBe(status);
  });
});
