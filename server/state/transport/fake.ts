import { RackseedError } from '../../model/errors.js';
import type { ExecOptions, ExecResult, Transport, WriteOptions } from '../types.js';
import { capText } from './capped-output.js';

/**
 * A recording transport for unit tests and fault injection: it keeps an in-memory file system, records every
 * call, and answers commands through a handler the test supplies. It is never used against a real node.
 */

export type RecordedCall =
  | { op: 'exec'; command: string; stdin?: string }
  | { op: 'readFile'; path: string }
  | { op: 'writeFile'; path: string; data: string; options: WriteOptions }
  | { op: 'close' };

/** Answers one command; return undefined to fall through to the default (exit 0, no output). */
export type CommandHandler = (command: string, transport: FakeTransport, options: ExecOptions) => ExecResult | Promise<ExecResult> | undefined;

export interface FakeTransportOptions {
  files?: Record<string, string>;
  handler?: CommandHandler;
  /** Fail every call after this many calls, as a dropped connection would. */
  dropAfterCalls?: number;
}

export class FakeTransport implements Transport {
  readonly calls: RecordedCall[] = [];
  readonly files = new Map<string, { data: Buffer; options: WriteOptions }>();
  private handler: CommandHandler | undefined;
  private dropAfter: number | undefined;
  private closed = false;

  constructor(
    readonly target: string,
    options: FakeTransportOptions = {},
  ) {
    for (const [p, text] of Object.entries(options.files ?? {})) this.files.set(p, { data: Buffer.from(text), options: {} });
    this.handler = options.handler;
    this.dropAfter = options.dropAfterCalls;
  }

  setHandler(handler: CommandHandler | undefined): void {
    this.handler = handler;
  }

  /** Commands run so far, in order. */
  get commands(): string[] {
    return this.calls.flatMap((c) => (c.op === 'exec' ? [c.command] : []));
  }

  /** Every byte the node received (commands, stdin and written files), for asserting what went over the wire. */
  get everythingSent(): string {
    return this.calls
      .map((c) => (c.op === 'exec' ? `${c.command}\n${c.stdin ?? ''}` : c.op === 'writeFile' ? `${c.path}\n${c.data}` : c.op === 'readFile' ? c.path : ''))
      .join('\n');
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const stdin = options.stdin === undefined ? undefined : options.stdin.toString();
    this.record(stdin === undefined ? { op: 'exec', command } : { op: 'exec', command, stdin });
    const answer = (this.handler ? await this.handler(command, this, options) : undefined) ?? { code: 0, stdout: '', stderr: '' };
    return options.outputLimitBytes === undefined ? answer : capped(answer, options.outputLimitBytes);
  }

  async readFile(path: string): Promise<Buffer | undefined> {
    this.record({ op: 'readFile', path });
    return this.files.get(path)?.data;
  }

  async writeFile(path: string, data: string | Buffer, options: WriteOptions = {}): Promise<void> {
    this.record({ op: 'writeFile', path, data: data.toString(), options });
    this.files.set(path, { data: Buffer.from(data), options });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.calls.push({ op: 'close' });
  }

  private record(call: RecordedCall): void {
    if (this.closed) throw new RackseedError('STATE_TRANSPORT', `${this.target}: transport is closed`, { target: this.target });
    if (this.dropAfter !== undefined && this.calls.length >= this.dropAfter) {
      throw new RackseedError('STATE_TRANSPORT', `${this.target}: connection dropped`, { target: this.target });
    }
    this.calls.push(call);
  }
}

/** The answer as a transport keeping `limit` bytes per stream would give it. */
function capped(answer: ExecResult, limit: number): ExecResult {
  const stdout = capText(answer.stdout, limit);
  const stderr = capText(answer.stderr, limit);
  if (stdout.dropped === 0 && stderr.dropped === 0) return answer;
  return { ...answer, stdout: stdout.text, stderr: stderr.text, dropped: { stdout: stdout.dropped, stderr: stderr.dropped } };
}
