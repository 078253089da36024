import { spawn } from 'node:child_process';
import { RackseedError, type ErrorCode } from '../model/errors.js';
import type { ArchiveEntry } from './layout.js';

/**
 * Runs GNU tar (the system's: it is on every server host already, and the image builds use it too). `stdoutFd`
 * receives the archive when creating; otherwise stdout is returned. Any exit but 0 fails with tar's own words.
 */
export function runTar(args: string[], code: ErrorCode, stdoutFd?: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', args, { stdio: ['ignore', stdoutFd ?? 'pipe', 'pipe'] });
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
  return names.map((name, i) => ({ name, type: verbose[i]!.charAt(0) }));
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}
