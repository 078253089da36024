import { spawn } from 'node:child_process';
import { RackseedError, type ErrorCode } from '../model/errors.js';
import type { ArchiveEntry } from './layout.js';

/**
 * Runs GNU tar (the system's: it is on every server host already, and the image builds use it too). `stdoutFd`
 * receives the archive when creating; otherwise stdout is returned. Any exit but 0 fails with tar's own words.
 */
export function runTar(args: string[], code: ErrorCode, stdoutFd?: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // The C locale: tar's escaping of names must not depend on the caller's (cron and minimal units run under C,
    // a shell under UTF-8), so every byte outside printable ASCII comes out as an octal escape, decoded below.
    const child = spawn('tar', args, { stdio: ['ignore', stdoutFd ?? 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    const out: Buffer[] = [];
    let err = '';
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', (e) => reject(new RackseedError(code, `cannot run tar: ${e.message}`, {}, { cause: e })));
    child.once('close', (status, signal) => {
      if (status === 0) return resolve(Buffer.concat(out).toString('utf8'));
      const reason = err.trim().split('\n').slice(-3).join('; ') || (signal ? `killed by ${signal}` : `exit ${status}`);
      reject(new RackseedError(code, `tar failed: ${reason}`, { args }));
    });
  });
}

/**
 * The archive's members, in order, with their types. Listed twice, names alone and verbose, and matched by position:
 * parsing names out of the verbose columns would break on a name holding spaces or " -> ". Names are escaped by tar
 * (`--quoting-style=escape`), so each is one line.
 */
export async function listArchive(file: string): Promise<ArchiveEntry[]> {
  const common = ['--list', '--gzip', `--file=${file}`, '--quoting-style=escape', '--numeric-owner'];
  const names = lines(await runTar(common, 'BACKUP_INVALID'));
  const verbose = lines(await runTar([...common, '--verbose'], 'BACKUP_INVALID'));
  if (names.length !== verbose.length) throw new RackseedError('BACKUP_INVALID', `${file}: tar lists ${names.length} names but ${verbose.length} entries; not an archive rackseed wrote`);
  return names.map((name, i) => ({ name: decodeTarName(name), type: verbose[i]!.charAt(0) }));
}

const SIMPLE_ESCAPES: Record<string, number> = { '\\': 0x5c, a: 0x07, b: 0x08, f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09, v: 0x0b, '?': 0x3f };

/**
 * A name as tar's `escape` quoting printed it, back to the name itself: octal escapes are its bytes (a UTF-8 name
 * such as `café` comes out as `caf\303\251` in the C locale), read as UTF-8. A name that is not UTF-8, or an escape
 * tar does not write, is returned as printed: it keeps a backslash, which the archive check refuses.
 */
export function decodeTarName(printed: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < printed.length; i++) {
    const c = printed.charCodeAt(i);
    if (printed[i] !== '\\') {
      if (c > 0x7e) return printed;
      bytes.push(c);
      continue;
    }
    const octal = /^[0-7]{3}/.exec(printed.slice(i + 1));
    const simple = SIMPLE_ESCAPES[printed[i + 1] ?? ''];
    if (octal) {
      bytes.push(parseInt(octal[0], 8));
      i += 3;
    } else if (simple !== undefined) {
      bytes.push(simple);
      i += 1;
    } else {
      return printed;
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return printed;
  }
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}
