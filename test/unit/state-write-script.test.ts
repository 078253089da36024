import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeScript } from '../../server/state/transport/ssh.js';

/**
 * The SSH transport's file write is a shell script; it runs here under the real sh, chown and chmod, with a chmod
 * and chown in front of them on PATH that log the temporary file's mode after each call, so the modes the file
 * passes through are seen, not only the one it ends with.
 */
let dir: string;
let log: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rackseed-write-script-'));
  log = path.join(dir, 'modes.log');
  for (const tool of ['chmod', 'chown']) {
    const real = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    const wrapper = path.join(dir, tool);
    writeFileSync(wrapper, `#!/bin/sh\n${real} "$@"; s=$?\nfor a in "$@"; do case "$a" in *.rackseed-tmp-*) echo "${tool} $(stat -c %a -- "$a")" >> ${log};; esac; done\nexit $s\n`);
    chmodSync(wrapper, 0o755);
  }
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(target: string, content: string, options: Parameters<typeof writeScript>[1]): string[] {
  const r = spawnSync('sh', ['-c', writeScript(target, options)], { input: content, encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return readFileSync(log, 'utf8').trim().split('\n');
}

describe('writeScript: the modes a written file passes through', () => {
  const me = userInfo().username;

  it('a new file asked to be 0600 is never readable by others on its way', () => {
    const target = path.join(dir, 'config.yaml');
    const modes = write(target, 'token: s3cret\n', { mode: '0600', owner: me });
    expect(modes).toEqual(['chown 600', 'chmod 600']);
    expect(statSync(target).mode & 0o7777).toBe(0o600);
    expect(readFileSync(target, 'utf8')).toBe('token: s3cret\n');
  });

  it('replacing a 0644 file with a 0600 one does not pass through 0644', () => {
    const target = path.join(dir, 'config.yaml');
    writeFileSync(target, 'old\n');
    chmodSync(target, 0o644);
    const modes = write(target, 'token: s3cret\n', { mode: '0600' });
    expect(modes.every((m) => m.endsWith(' 600'))).toBe(true);
    expect(statSync(target).mode & 0o7777).toBe(0o600);
  });

  it('without a mode a new file gets 0644 and a replaced one keeps its mode, set once at the end', () => {
    const fresh = path.join(dir, 'motd');
    expect(write(fresh, 'hi\n', {})).toEqual(['chmod 644']);
    expect(statSync(fresh).mode & 0o7777).toBe(0o644);
    rmSync(log);
    const kept = path.join(dir, 'kept');
    writeFileSync(kept, 'old\n');
    chmodSync(kept, 0o640);
    expect(write(kept, 'new\n', { owner: me })).toEqual(['chown 600', 'chown 600', 'chmod 640']);
    expect(statSync(kept).mode & 0o7777).toBe(0o640);
  });
});
