/**
 * The ssh command line the server uses outside the state runs (reimage's SSH reboot) against a real sshd whose port
 * is not 22 (states.ssh_port). A forwarder in the targets' hub namespace listens on 10.77.0.1:2222 and leads to the
 * target's sshd, and ssh runs in that namespace: a non-loopback address (ssh treats loopback specially when it
 * looks host keys up). The pins are written as NodeIdentity writes them (`name,ip key`).
 */
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sshRebootArgs } from '../../server/power/ssh-reboot.js';
import { pinnedSshDestination } from '../../server/services/pinned-ssh.js';
import { startSshTargets, type SshTarget, type SshTargets } from '../support/ssh-target.js';

let lab: SshTargets;
let target: SshTarget;
let dataDir: string;
let forwarder: ChildProcess;
const ADDRESS = '10.77.0.1';
const PORT = 2222;
const PIN_NAME = 'node07';

function ssh(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = lab.network.netns.run(lab.network.hub, 'ssh', args, 30_000);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const pin = (key: string) => writeFileSync(path.join(dataDir, 'ssh', 'known_hosts'), `${PIN_NAME},${ADDRESS} ${key}\n`);

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('SSH targets need root (network namespaces, overlay mounts, chroot)');
  lab = await startSshTargets(1, { names: ['node07'] });
  target = lab.targets[0]!;
  dataDir = mkdtempSync(path.join(tmpdir(), 'rackseed-pinned-ssh-'));
  mkdirSync(path.join(dataDir, 'ssh'), { mode: 0o700 });
  copyFileSync(target.privateKeyFile, path.join(dataDir, 'ssh', 'id_ed25519'));
  pin(target.hostKeyLine);
  const forward = `require('net').createServer((c) => { const s = require('net').connect(22, ${JSON.stringify(target.ip)}); c.pipe(s).pipe(c); c.on('error', () => s.destroy()); s.on('error', () => c.destroy()); }).listen(${PORT}, ${JSON.stringify(ADDRESS)}, () => console.log('listening'))`;
  forwarder = lab.network.netns.spawn(lab.network.hub, process.execPath, ['-e', forward], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    forwarder.stdout!.once('data', () => resolve());
    forwarder.once('exit', (code) => reject(new Error(`forwarder exited (${code})`)));
  });
}, 300_000);

afterAll(async () => {
  if (forwarder) await lab.network.netns.stop(forwarder, 'SIGTERM', 5_000);
  await lab?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('pinned ssh to a node whose sshd is not on port 22', () => {
  it('connects on that port and checks the pinned host key by address', () => {
    const r = ssh([...pinnedSshDestination(dataDir, ADDRESS, PORT, 10), 'uname', '-n']);
    expect(r.stderr).not.toMatch(/host key|Connection refused/i);
    expect(r).toMatchObject({ code: 0, stdout: `${target.name}\n` });
  });

  it('refuses a host whose key is not the pinned one', () => {
    pin('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHeadAdminKeyForTestsNotTheHostKey00000000');
    try {
      const r = ssh([...pinnedSshDestination(dataDir, ADDRESS, PORT, 10), 'uname', '-n']);
      expect(r.code).toBe(255);
      expect(r.stderr).toMatch(/host key/i);
    } finally {
      pin(target.hostKeyLine);
    }
  });

  it('the reboot command goes to that port (its last words are the command, run on the node)', () => {
    const args = sshRebootArgs(dataDir, '10.0.0.7', 2222);
    expect(args.slice(-3)).toEqual(['root@10.0.0.7', 'systemctl', 'reboot']);
    expect(args.join(' ')).toContain('-p 2222 -o HostKeyAlias=10.0.0.7');
    expect(sshRebootArgs(dataDir, '10.0.0.7').join(' ')).not.toContain('-p ');
  });
});
