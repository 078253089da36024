/**
 * Runs in a child on a pseudo-terminal (`script`): draws a progress bar on stderr the way the CLI does (argv[2]:
 * `image` for an image build's bars, `phases` for reimage/power), says `ready <pid>` and waits to be signalled.
 */
import { phaseProgress } from '../../server/cli/commands/reimage.js';
import { progressBars } from '../../server/images/progress-bars.js';

if (process.argv[2] === 'image') {
  progressBars(process.stderr).onProgress({ stage: 'pack', done: 1, total: 10 });
} else {
  phaseProgress({ json: false, write: (s: string) => void process.stdout.write(s) }, { plainLines: true }, process.stderr).update('mark', 1, 10);
}
process.stdout.write(`ready ${process.pid}\n`);
setInterval(() => undefined, 1_000);
