import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderPlan, type PlanInput } from '../../server/protocol/plan.js';
import { requireBinary } from '../support/process-output.js';

/**
 * The installer's plan reader (images/installer/lib/plan.sh) run by busybox sh, the shell of the installer
 * initramfs, on plans the server renders and on plans altered in transit: the reader's own checks are the last line
 * before a value reaches a disk or a file the installed system's scripts source.
 */
const LIB = path.resolve(import.meta.dirname, '../../images/installer/lib');
const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-plan-reader-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const input: PlanInput = {
  node: {
    name: 'node01',
    mac: '52:54:00:00:01:01',
    installedBoot: 'local',
    kernelArgs: ['console=ttyS0,115200n8', 'iommu=pt', 'rd.driver.blacklist=nouveau'],
    disk: { device: '/dev/vda', table: 'gpt', partitions: [{ mount: '/', size: 'rest', fs: 'ext4' }] },
  },
  image: { name: 'debian12', sha256: 'a'.repeat(64), size: 1000 },
  urls: { torrent: 'http://10.0.0.1:8080/t', http: 'http://10.0.0.1:8080/h', report: 'http://10.0.0.1:8080/node/v1/report' },
  keys: {
    hostPrivate: '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n',
    hostPublic: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG8m3gL3gB2Jw1vDq6u7n0cNcS0x4bY9Yq3rJ1f2kQ1h root@node01',
    authorized: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ4Q9n3y8t0bXvWl1gVt5m6d2s8kP0aR7cF4eH1uZ2yB rackseed'],
  },
};

/** Reads `plan` as the installer does; prints the boot settings, or the reader's error. */
function readPlan(plan: string): { ok: boolean; out: string } {
  const file = path.join(dir, 'plan');
  writeFileSync(file, plan);
  const script = `. ${LIB}/common.sh; . ${LIB}/plan.sh; PARTS=${dir}/parts AUTHORIZED=${dir}/keys
if read_plan ${file}; then printf 'boot=%s args=%s\\n' "$P_BOOT" "$P_KERNEL_ARGS"; else printf 'error=%s\\n' "$PLAN_ERROR"; exit 1; fi`;
  const r = spawnSync('busybox', ['sh', '-c', script], { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout.split('\n').filter((l) => !l.startsWith('RACKSEED-INSTALLER:')).join('\n').trim() };
}

describe('installer plan reader (busybox sh)', () => {
  requireBinary('busybox', 'apt-get install -y --no-install-recommends busybox-static');

  it('takes the kernel arguments of an installed_boot local plan as the server wrote them', () => {
    expect(readPlan(renderPlan(input))).toEqual({ ok: true, out: 'boot=local args=console=ttyS0,115200n8 iommu=pt rd.driver.blacklist=nouveau' });
    expect(readPlan(renderPlan({ ...input, node: { ...input.node, installedBoot: 'kernel' } }))).toEqual({ ok: true, out: 'boot=kernel args=' });
  });

  it.each([
    ['command substitution', 'quiet $(reboot)'],
    ['a backtick', 'quiet `reboot`'],
    ['a double quote that would end the GRUB value', 'quiet" ; reboot ; "'],
    ['a glob', 'quiet *'],
    ['a backslash', 'quiet x\\\\y'],
  ])('refuses kernel arguments altered to hold %s', (_label, args) => {
    const plan = renderPlan(input).replace(/^kernel_args .*$/m, `kernel_args ${args}`);
    expect(readPlan(plan)).toEqual({ ok: false, out: "error=the plan's kernel_args value is malformed" });
  });
});

describe("the installer's SSH identity step (busybox sh)", () => {
  requireBinary('busybox', 'apt-get install -y --no-install-recommends busybox-static');

  /** Runs write_ssh on a fake target whose image carries `imageKeys` (null: no file); returns the file afterwards. */
  function writeSsh(imageKeys: string | null, serverKeys: string): { ok: boolean; keys: string; stderr: string } {
    const target = mkdtempSync(path.join(dir, 'target-'));
    mkdirSync(path.join(target, 'root', '.ssh'), { recursive: true });
    mkdirSync(path.join(target, 'etc', 'ssh'), { recursive: true });
    if (imageKeys !== null) writeFileSync(path.join(target, 'root', '.ssh', 'authorized_keys'), imageKeys);
    writeFileSync(path.join(dir, 'server-keys'), serverKeys);
    const hostKey = Buffer.from('-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n').toString('base64');
    // chown needs root; the test is about which keys end up in the file.
    const script = `. ${LIB}/common.sh; . ${LIB}/identity.sh; chown() { :; }
TARGET=${target} AUTHORIZED=${dir}/server-keys P_HOSTKEY_B64=${hostKey} P_HOSTPUB='ssh-ed25519 AAAAhost root@node01'
write_ssh`;
    const r = spawnSync('busybox', ['sh', '-c', script], { encoding: 'utf8' });
    return { ok: r.status === 0, keys: readFileSync(path.join(target, 'root', '.ssh', 'authorized_keys'), 'utf8'), stderr: r.stderr };
  }

  const SERVER = 'ssh-ed25519 AAAAserver rackseed\n';

  it("adds the server's key to the keys the image carries, once, and keeps the site's admin keys", () => {
    expect(writeSsh('ssh-ed25519 AAAAadmin admin@site\n', SERVER)).toMatchObject({ ok: true, keys: 'ssh-ed25519 AAAAadmin admin@site\nssh-ed25519 AAAAserver rackseed\n' });
    // No newline at the end of the image's file, and the server's key already there: nothing run together, nothing twice.
    expect(writeSsh('ssh-ed25519 AAAAadmin admin@site', SERVER).keys).toBe('ssh-ed25519 AAAAadmin admin@site\nssh-ed25519 AAAAserver rackseed\n');
    expect(writeSsh(`ssh-ed25519 AAAAadmin admin@site\n${SERVER}`, SERVER).keys).toBe(`ssh-ed25519 AAAAadmin admin@site\n${SERVER}`);
    expect(writeSsh(null, SERVER)).toMatchObject({ ok: true, keys: SERVER });
  });
});
