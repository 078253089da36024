import type { ImageRecipe } from '../model/image.js';
import { run } from './build-exec.js';
import type { ProgressFn } from './progress.js';

const STEPS = ['Retrieving', 'Validating', 'Unpacking', 'Configuring'] as const;
type Step = (typeof STEPS)[number];
const NOT_PACKAGES = new Set(['required', 'the', 'base', 'InRelease', 'Release', 'Release.gpg', 'Packages']);

/**
 * Turns debootstrap's "I: <Step> <package>" lines into progress. The package count is only known once retrieval
 * ends, so the total grows with every package retrieved: each one goes through the four steps.
 */
export class DebootstrapProgress {
  private readonly seen = new Map<Step, number>(STEPS.map((s) => [s, 0]));

  constructor(private readonly report: ProgressFn) {}

  line(text: string): void {
    const m = /^I: (Retrieving|Validating|Unpacking|Configuring) (\S+?)(?:\.\.\.)?(?:\s|$)/.exec(text);
    // Phase headers ("Unpacking required packages...") and index files ("Retrieving InRelease") are not packages.
    if (!m || NOT_PACKAGES.has(m[2]!)) return;
    const step = m[1] as Step;
    this.seen.set(step, (this.seen.get(step) ?? 0) + 1);
    const packages = this.seen.get('Retrieving') ?? 0;
    const total = packages * STEPS.length;
    const done = STEPS.reduce((n, s) => n + Math.min(this.seen.get(s) ?? 0, packages), 0);
    this.report({ stage: 'debootstrap', done, total, detail: `${step} ${m[2]}` });
  }
}

/** The command line: no mirror argument, so debootstrap uses its built-in default archive. */
export function debootstrapArgs(recipe: Pick<ImageRecipe, 'release' | 'variant' | 'packages'>, dir: string): string[] {
  const packages = [...new Set(recipe.packages)];
  return [...(recipe.variant ? [`--variant=${recipe.variant}`] : []), ...(packages.length ? [`--include=${packages.join(',')}`] : []), recipe.release, dir];
}

export async function runDebootstrap(recipe: Pick<ImageRecipe, 'release' | 'variant' | 'packages'>, dir: string, report: ProgressFn): Promise<void> {
  const progress = new DebootstrapProgress(report);
  await run('debootstrap', debootstrapArgs(recipe, dir), { onLine: (l) => progress.line(l), env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' } });
}
