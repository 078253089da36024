/** What a build or import reports while it runs; `done`/`total` are steps or bytes depending on the stage. */
export type ImageStage = 'debootstrap' | 'files' | 'hook' | 'extract' | 'pack' | 'hash' | 'torrent' | 'publish';

export interface ImageProgress {
  stage: ImageStage;
  done: number;
  total: number;
  /** e.g. "Unpacking libc6" for debootstrap. */
  detail?: string;
}

export type ProgressFn = (p: ImageProgress) => void;

export const noProgress: ProgressFn = () => {};
