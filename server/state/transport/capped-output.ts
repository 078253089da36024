import { RackseedError } from '../../model/errors.js';

/**
 * A stream's bytes up to a limit; what comes after is counted, not kept: a command that prints without end must
 * cost the server its limit, not its memory.
 */
export class CappedOutput {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  dropped = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    const room = this.limit - this.kept;
    if (room <= 0) {
      this.dropped += chunk.length;
      return;
    }
    const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.chunks.push(part);
    this.kept += part.length;
    this.dropped += chunk.length - part.length;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** As UTF-8. A cut that split a multi-byte character drops its first bytes rather than showing U+FFFD. */
  text(): string {
    return this.dropped > 0 ? new TextDecoder('utf-8', { ignoreBOM: true }).decode(this.bytes(), { stream: true }) : this.bytes().toString('utf8');
  }
}

/** Text already in memory, kept up to `limit` bytes the same way: what was kept, and how many bytes were not. */
export function capText(text: string, limit: number): { text: string; dropped: number } {
  const out = new CappedOutput(limit);
  out.push(Buffer.from(text, 'utf8'));
  return out.dropped === 0 ? { text, dropped: 0 } : { text: out.text(), dropped: out.dropped };
}

/** A caller's per-stream limit, checked: a whole number of bytes, at least 1. */
export function outputLimit(requested: number | undefined, fallback: number): number {
  if (requested === undefined) return fallback;
  if (!Number.isInteger(requested) || requested < 1) throw new Error(`bad output limit ${requested}`);
  return requested;
}

/**
 * What a command had printed when it was stopped (timed out, cancelled), as far as the per-stream limit kept it: the
 * transports put it in their STATE_TIMEOUT / STATE_CANCELLED error's details as `partial`, because the lines before a
 * hang are what shows where it hung. Only for a caller that bounded the output (outputLimitBytes, as exec does): the
 * states' commands may print secrets, and an error object can end up in a log line whole.
 */
export interface PartialOutput {
  stdout: string;
  stderr: string;
  /** Some of either stream was beyond the limit and dropped. */
  truncated: boolean;
}

function partialOutput(stdout: CappedOutput, stderr: CappedOutput): PartialOutput {
  return { stdout: stdout.text(), stderr: stderr.text(), truncated: stdout.dropped + stderr.dropped > 0 };
}

/**
 * The STATE_TIMEOUT / STATE_CANCELLED error of a stopped command, with what it printed in its details as `partial`
 * when the caller bounded the output (else unchanged: see PartialOutput for why).
 */
export function stoppedWithOutput(error: RackseedError, stdout: CappedOutput, stderr: CappedOutput, outputLimitBytes: number | undefined): RackseedError {
  if (outputLimitBytes === undefined) return error;
  return new RackseedError(error.code, error.message, { ...error.details, partial: partialOutput(stdout, stderr) });
}

/** The partial output in an error's details, when it has a well-formed one. */
export function partialOutputOf(details: Record<string, unknown>): PartialOutput | undefined {
  const p = details.partial as Partial<PartialOutput> | undefined;
  if (typeof p !== 'object' || p === null || typeof p.stdout !== 'string' || typeof p.stderr !== 'string') return undefined;
  return { stdout: p.stdout, stderr: p.stderr, truncated: p.truncated === true };
}
