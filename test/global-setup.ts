import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Makes `npm test` work on a fresh machine: the Debian packages the suite needs are listed once, in
 * test/apt-packages.txt. Missing ones are installed when running as root; otherwise the suite stops with the
 * exact apt-get line to run.
 */
export default function setup(): void {
  const listFile = path.resolve(import.meta.dirname, 'apt-packages.txt');
  const missing = readFileSync(listFile, 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean)
    .map((l) => l.split(/\s+/) as [string, string])
    .filter(([, proof]) => !existsSync(proof))
    .map(([pkg]) => pkg);
  if (missing.length === 0) return;
  const line = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    throw new Error(`the test suite needs Debian packages that are missing; run as root:\n  apt-get update && ${line}`);
  }
  process.stderr.write(`test setup: installing ${missing.join(' ')}\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
}
