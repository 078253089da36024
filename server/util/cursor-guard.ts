/** What makes a terminal show its cursor again (cli-progress hides it while a bar is drawn). */
export const SHOW_CURSOR = '\x1b[?25h';

/**
 * While a progress bar has the terminal's cursor hidden, Ctrl-C (or a SIGTERM) shows it again before the process
 * dies of the signal as it would have (exit status 130 for Ctrl-C). cli-progress's own gracefulExit only stops the
 * bar: with its listener in place Node no longer exits on the signal, and without it the operator's shell was left
 * with no cursor. Returns the release, for when the bar stops.
 */
export function showCursorOnSignal(stream: NodeJS.WritableStream): () => void {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  const onSignal = (signal: NodeJS.Signals): void => {
    release();
    stream.write(`${SHOW_CURSOR}\n`);
    process.kill(process.pid, signal);
  };
  const release = (): void => {
    for (const s of signals) process.removeListener(s, onSignal);
  };
  for (const s of signals) process.once(s, onSignal);
  return release;
}
