import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderPlan, renderWipePlan } from '../../server/protocol/plan.js';
import { requireBinary } from '../support/process-output.js';

/**
 * The installer's wipe (images/installer/lib/wipe.sh) run by busybox sh, the initramfs's shell, with the real
 * wipefs, on disk images in a sysfs-shaped directory: which disks it takes, what each mode leaves, and that its check
 * catches a disk that did not take the zeros. The QEMU test (installer.test.ts) wipes a real virtual disk.
 */
const LIB = path.resolve(import.meta.dirname, '../../images/installer/lib');
const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-wipe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 1024 * 1024;

interface FakeDisk {
  name: string;
  bytes: number;
  removable?: boolean;
  readOnly?: boolean;
  /** A multipath NVMe namespace's per-controller path (nvme0c0n1): in sysfs, hidden, and no device node. */
  hidden?: boolean;
  /** In sysfs but without a device node. */
  noNode?: boolean;
  /** Lay a GPT with one partition on it (sfdisk works on files). */
  gpt?: boolean;
  /** sysfs identity files. */
  model?: string;
  serial?: string;
  wwid?: string;
}

/** A machine: /sys/block-like entries and /dev-like files full of random bytes. */
function machine(disks: FakeDisk[]): { sys: string; dev: string } {
  const root = mkdtempSync(path.join(dir, 'machine-'));
  const sys = path.join(root, 'sys');
  const dev = path.join(root, 'dev');
  mkdirSync(dev, { recursive: true });
  for (const d of disks) {
    mkdirSync(path.join(sys, d.name), { recursive: true });
    writeFileSync(path.join(sys, d.name, 'size'), `${d.bytes / 512}\n`);
    writeFileSync(path.join(sys, d.name, 'removable'), d.removable ? '1\n' : '0\n');
    writeFileSync(path.join(sys, d.name, 'ro'), d.readOnly ? '1\n' : '0\n');
    if (d.hidden) writeFileSync(path.join(sys, d.name, 'hidden'), '1\n');
    mkdirSync(path.join(sys, d.name, 'device'), { recursive: true });
    if (d.model) writeFileSync(path.join(sys, d.name, 'device', 'model'), `${d.model}\n`);
    if (d.serial) writeFileSync(path.join(sys, d.name, 'device', 'serial'), `${d.serial}\n`);
    if (d.wwid) writeFileSync(path.join(sys, d.name, 'wwid'), `${d.wwid}\n`);
    if (d.hidden || d.noNode) continue;
    const file = path.join(dev, d.name);
    const fd = openSync(file, 'w');
    for (let left = d.bytes; left > 0; left -= MiB) writeSync(fd, randomBytes(Math.min(left, MiB)));
    closeSync(fd);
    if (d.gpt) {
      const r = spawnSync('sfdisk', ['--quiet', file], { input: 'label: gpt\n,,L\n', encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    }
  }
  return { sys, dev };
}

/** Runs `body` after sourcing the installer's libraries, reports written to a file instead of the server. */
function installer(m: { sys: string; dev: string }, body: string): { status: number; out: string; reports: string[] } {
  const reports = path.join(m.sys, '..', 'reports');
  writeFileSync(reports, '');
  const script = `. ${LIB}/common.sh; . ${LIB}/wipe.sh
report_json() { printf '%s\\n' "$1" >> ${reports}; }
WIPE_SYS=${m.sys} WIPE_DEV=${m.dev} WIPE_TMP=${m.sys}/.. WIPEFS=/usr/sbin/wipefs WIPE_NODE_TEST=-f WIPE_SETTLE_STABLE=0 WIPE_SETTLE_MIN=0
${body}`;
  const r = spawnSync('busybox', ['sh', '-c', script], { encoding: 'utf8' });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}`, reports: readFileSync(reports, 'utf8').split('\n').filter(Boolean) };
}

const nonZero = (buf: Buffer) => buf.reduce((n, b) => n + (b === 0 ? 0 : 1), 0);
const signatures = (file: string) => spawnSync('/usr/sbin/wipefs', ['--noheadings', file], { encoding: 'utf8' }).stdout.trim();

describe('installer wipe (busybox sh, real wipefs)', () => {
  requireBinary('busybox', 'apt-get install -y --no-install-recommends busybox-static');
  requireBinary('/usr/sbin/wipefs', 'apt-get install -y util-linux');
  requireBinary('sfdisk', 'apt-get install -y fdisk');

  it('takes every fixed, writable disk and leaves removable, read-only and virtual block devices alone', () => {
    const m = machine([
      { name: 'nvme0n1', bytes: 4 * MiB },
      { name: 'sda', bytes: 4 * MiB },
      { name: 'sdb', bytes: 4 * MiB, removable: true },
      { name: 'sr0', bytes: 4 * MiB },
      { name: 'loop0', bytes: 4 * MiB },
      { name: 'vdb', bytes: 4 * MiB, readOnly: true },
      { name: 'nvme0c0n1', bytes: 4 * MiB, hidden: true },
      { name: 'sdc', bytes: 4 * MiB, noNode: true },
    ]);
    const r = installer(m, `find_wipe_disks && cat ${m.sys}/../wipe-disks && echo "skipped=[$WIPE_SKIPPED_JSON]"`);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(`nvme0n1 ${4 * MiB}\nsda ${4 * MiB}\n`);
    expect(r.out).toContain('leaving sdb alone (removable)');
    expect(r.out).toContain('leaving vdb alone (read-only)');
    expect(r.out).not.toMatch(/^(sr0|loop0|sdb|vdb|sdc|nvme0c0n1) /m);
    // What was left alone is told to the server; a hidden multipath path is not a device of its own.
    expect(r.out).toContain('skipped=[{"name":"sdb","why":"removable"},{"name":"sdc","why":"no device node"},{"name":"vdb","why":"read-only"}]');
    // Before: dd created a regular file for a device without a node (in the initramfs, the disk's size in RAM).
    expect(existsSync(path.join(m.dev, 'sdc'))).toBe(false);
  });

  it('fails when there is no disk at all: a wipe that erased nothing does not report success', () => {
    const m = machine([{ name: 'sdb', bytes: MiB, removable: true }]);
    const r = installer(m, 'find_wipe_disks || { echo "error: $WIPE_ERROR"; exit 1; }');
    expect(r.status).toBe(1);
    expect(r.out).toContain('error: no disk to wipe: the kernel sees none');
  });

  it('quick: no signature left (the GPT and its backup), both ends zeroed, the middle left as it was', () => {
    const m = machine([{ name: 'vda', bytes: 64 * MiB, gpt: true, model: 'QEMU HARDDISK', serial: 'QM00001', wwid: 't10.ATA QEMU HARDDISK' }]);
    const disk = path.join(m.dev, 'vda');
    expect(signatures(disk)).toMatch(/gpt/);
    const middleBefore = readFileSync(disk).subarray(30 * MiB, 34 * MiB);
    const r = installer(m, 'find_wipe_disks && wipe_all quick && echo "disks=[$WIPED_JSON]" || { echo "error: $WIPE_ERROR"; exit 1; }');
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(`disks=[{"name":"vda","bytes":${64 * MiB},"model":"QEMU HARDDISK","serial":"QM00001","wwid":"t10.ATA QEMU HARDDISK"}]`);
    const after = readFileSync(disk);
    expect(signatures(disk)).toBe('');
    expect(nonZero(after.subarray(0, 16 * MiB))).toBe(0);
    expect(nonZero(after.subarray(48 * MiB))).toBe(0);
    expect(after.subarray(30 * MiB, 34 * MiB).equals(middleBefore)).toBe(true);
    expect(r.reports).toEqual([`{"stage":"wipe","detail":{"disk":"vda","pass":"start","bytes":0,"size":${64 * MiB}}}`]);
  });

  it('full: every byte of every disk zero, written then read back, progress reported per piece', () => {
    const m = machine([
      { name: 'sda', bytes: 10 * MiB, gpt: true },
      // Not a whole number of MiB: the last piece is shorter.
      { name: 'sdb', bytes: 3 * MiB + 512 },
    ]);
    const r = installer(m, `WIPE_CHUNK_BYTES=${4 * MiB}; find_wipe_disks && wipe_all full && echo "disks=[$WIPED_JSON]" || { echo "error: $WIPE_ERROR"; exit 1; }`);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(`disks=[{"name":"sda","bytes":${10 * MiB},"model":"","serial":"","wwid":""},{"name":"sdb","bytes":${3 * MiB + 512},"model":"","serial":"","wwid":""}]`);
    for (const name of ['sda', 'sdb']) expect(nonZero(readFileSync(path.join(m.dev, name))), name).toBe(0);
    const sda = r.reports.filter((l) => l.includes('"disk":"sda"')).map((l) => JSON.parse(l).detail as { pass: string; bytes: number });
    expect(sda.map((d) => `${d.pass}:${d.bytes / MiB}`)).toEqual(['start:0', 'write:4', 'write:8', 'write:10', 'check:4', 'check:8', 'check:10']);
  });

  it('wipes every disk at the same time: a node with many disks takes as long as its slowest one', () => {
    const m = machine([
      { name: 'sda', bytes: MiB },
      { name: 'sdb', bytes: MiB },
      { name: 'sdc', bytes: MiB },
    ]);
    const marks = mkdtempSync(path.join(dir, 'marks-'));
    // Each disk's wipe waits (10 s at most) until all three have begun: one after the other, the first never sees
    // the others and fails.
    const meeting = `full_wipe() { : > ${marks}/$1; _t=0; while [ "$(ls ${marks} | wc -l)" -lt 3 ]; do [ $_t -lt 100 ] || { WIPE_ERROR="$1 waited alone"; return 1; }; sleep 0.1; _t=$((_t + 1)); done; }`;
    const r = installer(m, `${meeting}; find_wipe_disks && wipe_all full && echo "disks=[$WIPED_JSON]" || { echo "error: $WIPE_ERROR"; exit 1; }`);
    expect(r.status, r.out).toBe(0);
    // The report lists the disks in the kernel's order, whatever order they finished in.
    expect(JSON.parse(`[${/disks=\[(.*)\]/.exec(r.out)![1]}]`).map((d: { name: string }) => d.name)).toEqual(['sda', 'sdb', 'sdc']);
    // Nothing of the jobs is left behind.
    expect(readdirSync(path.join(m.sys, '..')).filter((f) => f.startsWith('wipe-job-'))).toEqual([]);
  });

  it('WIPE_PARALLEL caps how many disks are wiped at once', () => {
    const m = machine([
      { name: 'sda', bytes: MiB },
      { name: 'sdb', bytes: MiB },
      { name: 'sdc', bytes: MiB },
    ]);
    const log = path.join(dir, `order-${randomBytes(4).toString('hex')}`);
    const logged = `full_wipe() { echo "start $1" >> ${log}; sleep 0.3; echo "end $1" >> ${log}; }`;
    const r = installer(m, `${logged}; WIPE_PARALLEL=1; find_wipe_disks && wipe_all full || { echo "error: $WIPE_ERROR"; exit 1; }`);
    expect(r.status, r.out).toBe(0);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['start sda', 'end sda', 'start sdb', 'end sdb', 'start sdc', 'end sdc']);
  });

  it('disks that fail do not stop the others: the error names them first, then why, then every disk that was erased', () => {
    const m = machine([
      { name: 'sda', bytes: 2 * MiB },
      { name: 'sdb', bytes: 2 * MiB },
      { name: 'sdc', bytes: 2 * MiB },
      { name: 'sdd', bytes: 2 * MiB },
    ]);
    // sdb and sdd refuse writes, as disks with failing sectors do; the real dd for the others.
    const failing = `dd() { case "$*" in *of=${m.dev}/sdb*|*of=${m.dev}/sdd*) echo "dd: error writing: Input/output error" >&2; return 1 ;; esac; command dd "$@"; }`;
    const r = installer(m, `${failing}; find_wipe_disks && wipe_all full || { echo "error: $WIPE_ERROR"; exit 1; }`);
    expect(r.status).toBe(1);
    // The names first: the server keeps the first 500 characters of a reason, and on a shelf of 60 disks the list of
    // erased ones alone is longer than the failures' names.
    expect(r.out).toContain(
      `error: wipe failed on sdb, sdd: writing zeros to ${m.dev}/sdb at byte 0 failed: dd: error writing: Input/output error; ` +
        `writing zeros to ${m.dev}/sdd at byte 0 failed: dd: error writing: Input/output error (erased and checked: sda, sdc)`,
    );
    for (const name of ['sda', 'sdc']) expect(nonZero(readFileSync(path.join(m.dev, name))), name).toBe(0);
    for (const name of ['sdb', 'sdd']) expect(nonZero(readFileSync(path.join(m.dev, name))), name).toBeGreaterThan(0);
    expect(r.out).not.toMatch(/sd[bd] erased and checked/);
  });

  it('the check catches a disk that did not take the zeros (it is read back, not assumed)', () => {
    const m = machine([{ name: 'sda', bytes: 8 * MiB }]);
    // A disk that silently drops writes: zero_range "succeeds" and writes nothing.
    const r = installer(m, 'zero_range() { return 0; }; find_wipe_disks && wipe_all full || { echo "error: $WIPE_ERROR"; exit 1; }');
    expect(r.status).toBe(1);
    expect(r.out).toMatch(new RegExp(`error: wipe failed on sda: ${m.dev}/sda still holds \\d+ non-zero bytes between byte 0 and byte ${8 * MiB} after the wipe`));
    expect(r.reports.some((l) => l.includes('"pass":"check"'))).toBe(false);
    const q = installer(machine([{ name: 'sda', bytes: 64 * MiB }]), 'zero_range() { return 0; }; find_wipe_disks && wipe_all quick || { echo "error: $WIPE_ERROR"; exit 1; }');
    expect(q.status).toBe(1);
    expect(q.out).toMatch(/still holds \d+ non-zero bytes between byte 0 and byte 16777216/);
  });

  it('a read that fails or comes back short is an error, never "all zeros"', () => {
    // The kernel says 8 MiB; the device holds 4 (a disk shorter than it claims, or one whose reads end early).
    const short = machine([{ name: 'sda', bytes: 8 * MiB }]);
    truncateSync(path.join(short.dev, 'sda'), 4 * MiB);
    const r = installer(short, `zero_range() { return 0; }; WIPE_CHUNK_BYTES=${8 * MiB}; truncate() { :; }; find_wipe_disks && wipe_check_range ${short.dev}/sda 0 ${8 * MiB} || { echo "error: $WIPE_ERROR"; exit 1; }`);
    expect(r.status).toBe(1);
    expect(r.out).toContain(`error: reading ${short.dev}/sda back at byte 0 gave ${4 * MiB} of ${8 * MiB} bytes`);
    // A device that cannot be read at all (here a directory, which dd opens and cannot read): before, dd's failure
    // read as 0 non-zero bytes, and the check passed.
    const unreadable = installer(short, `WIPE_NODE_TEST=-e; wipe_check_range ${short.dev} 0 ${MiB} || { echo "error: $WIPE_ERROR"; exit 1; }`);
    expect(unreadable.status).toBe(1);
    expect(unreadable.out).toMatch(new RegExp(`error: reading ${short.dev} back at byte 0 failed: .*Is a directory`));
    const gone = installer(short, `wipe_check_range ${short.dev}/nosuchdisk 0 ${MiB} || { echo "error: $WIPE_ERROR"; exit 1; }`);
    expect(gone.status).toBe(1);
    expect(gone.out).toContain(`error: ${short.dev}/nosuchdisk is no longer a disk`);
  });

  it('a disk that goes away during the wipe fails it: nothing is written to its path, nothing passes for erased', () => {
    for (const mode of ['full', 'quick']) {
      const m = machine([{ name: 'sda', bytes: 3 * MiB }, { name: 'sdb', bytes: 3 * MiB }]);
      const sdb = path.join(m.dev, 'sdb');
      // sdb drops off the bus after its first piece is written (full), or while it is discarded (quick).
      const vanish = mode === 'full'
        ? `report_json() { case "$1" in *'"disk":"sdb","pass":"write","bytes":${MiB},'*) rm ${sdb} ;; esac; }`
        : `blkdiscard() { case "$1" in *sdb) rm ${sdb} ;; esac; return 1; }`;
      const r = installer(m, `${vanish}; WIPE_CHUNK_BYTES=${MiB}; find_wipe_disks && wipe_all ${mode} && echo "disks=[$WIPED_JSON]" || { echo "error: $WIPE_ERROR"; exit 1; }`);
      // Before: dd made a regular file at sdb's path, wrote the zeros there, read them back: "erased and checked".
      expect(r.status, `${mode}: ${r.out}`).toBe(1);
      expect(r.out).toContain(`error: wipe failed on sdb: ${sdb} is no longer a disk (its device node is gone or is not a device): the disk went away during the wipe (erased and checked: sda)`);
      expect(r.out).not.toContain('sdb erased and checked');
      expect(existsSync(sdb), mode).toBe(false);
    }
  });

  it('waits until the storage drivers stop adding disks before it takes the list', () => {
    const m = machine([{ name: 'sda', bytes: MiB }]);
    // A disk the SAS HBA reports two seconds later.
    const late = `(sleep 2; mkdir -p ${m.sys}/sdb; echo 2048 > ${m.sys}/sdb/size; head -c ${MiB} /dev/urandom > ${m.dev}/sdb) &`;
    const r = installer(m, `${late} WIPE_SETTLE_STABLE=3; find_wipe_disks && cat ${m.sys}/../wipe-disks`);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(`sda ${MiB}\nsdb ${MiB}\n`);
  });
});

describe('installer plan reader: wipe plans (busybox sh)', () => {
  requireBinary('busybox', 'apt-get install -y --no-install-recommends busybox-static');

  function readPlan(plan: string): { ok: boolean; out: string } {
    const file = path.join(dir, 'plan');
    writeFileSync(file, plan);
    const script = `. ${LIB}/common.sh; . ${LIB}/plan.sh; PARTS=${dir}/parts AUTHORIZED=${dir}/keys
if read_plan ${file}; then printf 'action=%s mode=%s host=%s report=%s\\n' "$P_ACTION" "$P_MODE" "$P_HOSTNAME" "$REPORT_URL"; else printf 'error=%s\\n' "$PLAN_ERROR"; exit 1; fi`;
    const r = spawnSync('busybox', ['sh', '-c', script], { encoding: 'utf8' });
    return { ok: r.status === 0, out: r.stdout.split('\n').filter((l) => !l.startsWith('RACKSEED-INSTALLER:')).join('\n').trim() };
  }

  const wipePlan = renderWipePlan({ node: { name: 'node07' }, mode: 'full', urls: { report: 'http://10.0.0.1:8080/node/v1/report' } });

  it('reads the action, the mode and the report URL of a wipe plan the server wrote', () => {
    expect(readPlan(wipePlan)).toEqual({ ok: true, out: 'action=wipe mode=full host=node07 report=http://10.0.0.1:8080/node/v1/report' });
  });

  it('refuses a wipe plan with a mode it does not know, an unknown action, or a truncated plan', () => {
    expect(readPlan(wipePlan.replace('mode full', 'mode secure'))).toEqual({ ok: false, out: 'error=wipe mode secure is not quick or full' });
    expect(readPlan(wipePlan.replace('action wipe', 'action format'))).toEqual({ ok: false, out: "error=the plan's action format is not install or wipe" });
    expect(readPlan(wipePlan.replace('end\n', ''))).toEqual({ ok: false, out: 'error=the plan is truncated (no end line)' });
    expect(readPlan(wipePlan.replace(/^mode .*\n/m, ''))).toEqual({ ok: false, out: 'error=the plan has no mode line' });
  });

  it('an install plan is still an install', () => {
    const plan = renderPlan({
      node: { name: 'node01', mac: '52:54:00:00:01:01', installedBoot: 'kernel', kernelArgs: [], disk: { device: '/dev/vda', table: 'gpt', partitions: [{ mount: '/', size: 'rest', fs: 'ext4' }] } },
      image: { name: 'debian12', sha256: 'a'.repeat(64), size: 1000 },
      urls: { torrent: 'http://10.0.0.1:8080/t', http: 'http://10.0.0.1:8080/h', report: 'http://10.0.0.1:8080/node/v1/report' },
      keys: { hostPrivate: 'k\n', hostPublic: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG8m3gL3gB2Jw1vDq6u7n0cNcS0x4bY9Yq3rJ1f2kQ1h root@node01', authorized: [] },
    });
    expect(readPlan(plan)).toEqual({ ok: true, out: 'action=install mode= host=node01 report=http://10.0.0.1:8080/node/v1/report' });
  });
});
