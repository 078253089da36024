import cliProgress from 'cli-progress';
import { showCursorOnSignal } from '../util/cursor-guard.js';
import type { ImageProgress, ImageStage, ProgressFn } from './progress.js';

const BYTE_STAGES = new Set<ImageStage>(['extract', 'pack', 'hash', 'torrent']);

const LABEL: Record<ImageStage, string> = {
  debootstrap: 'debootstrap',
  files: 'files',
  hook: 'hook',
  extract: 'unpacking',
  pack: 'packing',
  hash: 'hashing',
  torrent: 'torrent',
  publish: 'publishing',
};

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

/**
 * Progress for people on a terminal: one bar per stage (debootstrap counts package steps, packing counts bytes
 * read from the tree, hashing bytes hashed). Off a terminal (logs, CI) one line per stage instead of redraws.
 */
export function progressBars(stream: NodeJS.WriteStream = process.stderr): { onProgress: ProgressFn; stop(): void } {
  let stage: ImageStage | undefined;
  let bar: cliProgress.SingleBar | undefined;
  let releaseCursor: (() => void) | undefined;
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
    releaseCursor?.();
    releaseCursor = undefined;
  };
  const onProgress = (p: ImageProgress): void => {
    const bytes = BYTE_STAGES.has(p.stage);
    const payload = { detail: p.detail ?? '', shown: bytes ? `${mib(p.done)} / ${mib(p.total)}` : `${p.done}/${p.total}` };
    if (p.stage !== stage) {
      stop();
      stage = p.stage;
      if (!stream.isTTY) {
        stream.write(`${LABEL[p.stage]}...\n`);
        return;
      }
      bar = new cliProgress.SingleBar(
        { stream, format: `${LABEL[p.stage].padEnd(11)} [{bar}] {percentage}% {shown} {detail}`, hideCursor: true, clearOnComplete: false, etaBuffer: 50 },
        cliProgress.Presets.shades_classic,
      );
      releaseCursor = showCursorOnSignal(stream);
      bar.start(Math.max(p.total, 1), p.done, payload);
      return;
    }
    bar?.setTotal(Math.max(p.total, 1));
    bar?.update(p.done, payload);
  };
  return { onProgress, stop };
}
