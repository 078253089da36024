import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { chmodSync, copyFileSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderPlan, type PlanInput } from '../../server/protocol/plan.js';
import { Netns } from '../support/netns.js';
import { requireBinary } from '../support/process-output.js';
import { unusedLoopbackPort } from '../support/ports.js';

/**
 * Pieces of the installer (images/installer/lib) run by busybox sh, the initramfs's shell: the lease script in a
 * network and mount namespace of its own (it writes /etc/resolv.conf and flushes an interface), and the report
 * retries against a real HTTP server on loopback that starts late.
 */
const LIB = path.resolve(import.meta.dirname, '../../images/installer/lib');
const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-installer-shell-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('installer lease script', () => {
  it('applies the address and writes the lease\'s DNS servers and domain to /etc/resolv.conf (a host name in http.public_url resolves)', () => {
    requireBinary('busybox', 'apt-get install -y --no-install-recommends busybox-static');
    const netns = new Netns();
    try {
      const ns = netns.addNamespace('ls');
      const peer = netns.addNamespace('lp');
      const [nic] = netns.addVeth(ns, 'lse', peer, 'lpe');
      const resolv = path.join(dir, 'resolv.conf');
      writeFileSync(resolv, '# before\n');
      // A private mount namespace: /etc/resolv.conf and /run are this test's files, not the host's.
      const script = `mount --bind ${resolv} /etc/resolv.conf && mount -t tmpfs none /run && ` +
        `interface=${nic} ip=10.9.9.9 mask=24 router=10.9.9.1 dns='10.9.9.1 10.9.9.2' domain=lab.example busybox sh ${LIB}/udhcpc.script bound && ` +
        `cat /run/rackseed-ip && ip -4 -o addr show dev ${nic}`;
      const r = netns.run(ns, 'unshare', ['-m', 'sh', '-c', script]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('10.9.9.9\n');
      expect(r.stdout).toMatch(/inet 10\.9\.9\.9\/24/);
      // Before: resolv.conf was never written, and wget said "bad address" for any host name.
      expect(readFileSync(resolv, 'utf8')).toBe('search lab.example\nnameserver 10.9.9.1\nnameserver 10.9.9.2\n');
    } finally {
      netns.cleanup();
    }
  });
});

describe('installer reports', () => {
  it('the final report waits out a server that is down for a while (it gave up after 6 s and powered off a finished install)', async () => {
    requireBinary('busybox', 'apt-get install -y --no-install-recommends busybox-static');
    // Nothing listens on it for 9 s.
    const port = await unusedLoopbackPort();
    const bodies: string[] = [];
    let server: Server | undefined;
    const late = setTimeout(() => {
      server = createServer((req, res) => {
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => {
          bodies.push(body);
          res.writeHead(204).end();
        });
      }).listen(port, '127.0.0.1');
    }, 9_000);
    try {
      const script = `. ${LIB}/common.sh; SERVER=http://127.0.0.1:${port} TOKEN=t; report_json '{"installed":true}' "$FINAL_REPORT_TRIES" && echo taken`;
      const child = spawn('busybox', ['sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code).toBe(0);
      expect(out).toContain('taken');
      expect(bodies).toEqual(['{"installed":true}']);
      // A progress report keeps its three quick tries.
      const quick = spawnSync('busybox', ['sh', '-c', `. ${LIB}/common.sh; SERVER=http://127.0.0.1:1 TOKEN=t; report_json '{"stage":"x"}'; echo "rc=$?"`], { encoding: 'utf8', timeout: 60_000 });
      expect(quick.stdout).toContain('rc=1');
    } finally {
      clearTimeout(late);
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    }
  }, 120_000);
});

describe('installer plan fetch', () => {
  const input: PlanInput = {
    node: { name: 'node01', mac: '52:54:00:00:01:01', installedBoot: 'local', kernelArgs: [], disk: { device: '/dev/vda', table: 'gpt', partitions: [{ mount: '/', size: 'rest', fs: 'ext4' }] } },
    image: { name: 'debian12', sha256: 'a'.repeat(64), size: 1000 },
    urls: { torrent: 'http://127.0.0.1/t', http: 'http://127.0.0.1/h', report: 'http://127.0.0.1/node/v1/report' },
    keys: { hostPrivate: '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n', hostPublic: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG8m3gL3gB2Jw1vDq6u7n0cNcS0x4bY9Yq3rJ1f2kQ1h root@node01', authorized: [] },
  };

  /** fetch_plan under busybox sh, with /run a tmpfs of its own (the installer keeps the plan there). */
  async function fetchPlan(port: number): Promise<{ code: number | null; out: string }> {
    const script = `mount -t tmpfs none /run && . ${LIB}/common.sh && . ${LIB}/plan.sh && SERVER=http://127.0.0.1:${port} TOKEN=t && if fetch_plan; then echo "image=$P_IMAGE"; else echo "error=$PLAN_ERROR"; exit 1; fi`;
    const child = spawn('unshare', ['-m', 'busybox', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    return { code, out };
  }

  it('asks again while the server cannot be reached (restarting), and stops at once on an error answer (the token is spent or refused)', async () => {
    requireBinary('busybox', 'apt-get install -y --no-install-recommends busybox-static');
    const port = await unusedLoopbackPort();
    let status = 200;
    let asked = 0;
    let server: Server | undefined;
    const late = setTimeout(() => {
      server = createServer((_req, res) => {
        asked += 1;
        if (status === 200) res.writeHead(200, { 'content-type': 'text/plain' }).end(renderPlan(input));
        else res.writeHead(status).end('{"error":{"code":"UNAUTHORIZED","message":"already fetched"}}');
      }).listen(port, '127.0.0.1');
    }, 5_000);
    try {
      // Before: the first refused connection failed the install.
      const first = await fetchPlan(port);
      expect(first.out).toContain('image=debian12');
      expect(first.code).toBe(0);
      status = 409;
      asked = 0;
      const refused = await fetchPlan(port);
      expect(refused.code).toBe(1);
      expect(refused.out).toMatch(/error=could not fetch the install plan from .*409/);
      // Asked once: an error answer is final (the token is spent), not retried for minutes.
      expect(asked).toBe(1);
    } finally {
      clearTimeout(late);
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    }
  }, 120_000);
});

describe('installer identity', () => {
  /**
   * write_identity under busybox sh against a small tree standing in for the unpacked image, with /run a tmpfs of
   * its own. `outside` stands for the installer's own files: an absolute link in the image resolves there.
   */
  function writeIdentity(target: string): { status: number | null; out: string } {
    const key = Buffer.from('-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n').toString('base64');
    const script = `mount -t tmpfs none /run && . ${LIB}/common.sh && . ${LIB}/disk.sh && . ${LIB}/identity.sh && ` +
      `TARGET=${target} PARTS=/run/parts AUTHORIZED=/run/keys P_HOSTNAME=node07 P_MAC=52:54:00:00:00:07 ` +
      `P_HOSTKEY_B64=${key} P_HOSTPUB='ssh-ed25519 AAAA node07' && echo '1 rest ext4 /' > /run/parts && ` +
      `echo 'ssh-ed25519 BBBB rackseed' > /run/keys && if write_identity; then echo ok; else echo "error=$IDENTITY_ERROR"; fi`;
    const r = spawnSync('unshare', ['-m', 'busybox', 'sh', '-c', script], { encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, out: r.stdout + r.stderr };
  }

  it('replaces the image\'s links at the files it writes instead of writing through them into the installer, and stops at a directory linked out of the image', () => {
    requireBinary('busybox', 'apt-get install -y --no-install-recommends busybox-static');
    const root = mkdtempSync(path.join(dir, 'identity-'));
    const target = path.join(root, 'target');
    const outside = path.join(root, 'outside');
    mkdirSync(outside);
    mkdirSync(path.join(target, 'etc/ssh'), { recursive: true });
    mkdirSync(path.join(target, 'usr/lib'), { recursive: true });
    writeFileSync(path.join(outside, 'hostname'), 'installer\n');
    writeFileSync(path.join(outside, 'machine-id'), 'cafe\n');
    // Absolute links: inside the image they mean the image's own files, here they lead out of it.
    symlinkSync(path.join(outside, 'hostname'), path.join(target, 'etc/hostname'));
    symlinkSync(path.join(outside, 'machine-id'), path.join(target, 'etc/machine-id'));
    // A relative link that stays inside the image is followed as before (merged /usr).
    symlinkSync('usr/lib', path.join(target, 'lib'));
    // /etc/hosts linked inside the image: its lines are kept in the file that replaces the link.
    writeFileSync(path.join(target, 'etc/hosts.site'), '127.0.0.1 localhost\n::1 localhost ip6-localhost\n');
    symlinkSync('hosts.site', path.join(target, 'etc/hosts'));

    const first = writeIdentity(target);
    expect(first.out).toContain('ok');
    // Before: "node07" went into the installer's file and the image kept its link.
    expect(readFileSync(path.join(outside, 'hostname'), 'utf8')).toBe('installer\n');
    expect(readFileSync(path.join(outside, 'machine-id'), 'utf8')).toBe('cafe\n');
    expect(lstatSync(path.join(target, 'etc/hostname')).isSymbolicLink()).toBe(false);
    expect(readFileSync(path.join(target, 'etc/hostname'), 'utf8')).toBe('node07\n');
    expect(readFileSync(path.join(target, 'etc/machine-id'), 'utf8')).toBe('');
    expect(readFileSync(path.join(target, 'etc/hosts'), 'utf8')).toBe('127.0.0.1 localhost\n::1 localhost ip6-localhost\n127.0.1.1 node07\n');
    expect(readFileSync(path.join(target, 'etc/fstab'), 'utf8')).toContain('LABEL=rackseed-root / ext4');
    expect(readFileSync(path.join(target, 'root/.ssh/authorized_keys'), 'utf8')).toBe('ssh-ed25519 BBBB rackseed\n');

    // A directory the installer writes into that leads out of the image: refused, with the path named.
    rmSync(path.join(target, 'etc/ssh'), { recursive: true });
    mkdirSync(path.join(outside, 'ssh'));
    symlinkSync(path.join(outside, 'ssh'), path.join(target, 'etc/ssh'));
    const second = writeIdentity(target);
    expect(second.out).toContain(`error=/etc/ssh in the image is a link out of it (to ${path.join(outside, 'ssh')})`);
    expect(readdirSync(path.join(outside, 'ssh'))).toEqual([]);
  });
});

describe('installer network', () => {
  it('waits for the NIC iPXE booted from when another NIC shows up first, and takes its lease on the provisioning network', async () => {
    requireBinary('busybox', 'apt-get install -y --no-install-recommends busybox-static');
    const netns = new Netns();
    try {
      const node = netns.addNamespace('nn');
      const other = netns.addNamespace('no');
      const prov = netns.addNamespace('np');
      const bootMac = '52:54:00:AA:00:07';
      // Two real DHCP servers (busybox udhcpd): another network the node is also cabled to, and the provisioning one.
      const udhcpd = (ns: string, ifname: string, net: string): void => {
        netns.addAddress(ns, ifname, `${net}.1/24`);
        const conf = path.join(dir, `${ifname}.conf`);
        writeFileSync(conf, `start ${net}.50\nend ${net}.60\ninterface ${ifname}\nlease_file ${dir}/${ifname}.leases\npidfile ${dir}/${ifname}.pid\noption subnet 255.255.255.0\n`);
        netns.spawn(ns, 'busybox', ['udhcpd', '-f', conf]);
      };
      const [, otherEnd] = netns.addVeth(node, 'ne', other, 'oe');
      udhcpd(other, otherEnd, '10.8.0');
      const resolv = path.join(dir, 'net-resolv.conf');
      writeFileSync(resolv, '');
      // udhcpc runs its script as a program (the initramfs installs it executable; git keeps it 0644).
      const leaseScript = path.join(dir, 'udhcpc.script');
      copyFileSync(path.join(LIB, 'udhcpc.script'), leaseScript);
      chmodSync(leaseScript, 0o755);
      const script = `mount --bind ${resolv} /etc/resolv.conf && mount -t tmpfs none /run && . ${LIB}/common.sh && ` +
        `BOOT_MAC=${bootMac} UDHCPC_SCRIPT=${leaseScript} && network_up && echo "lease=$IP if=$IF"`;
      const child = netns.spawn(node, 'unshare', ['-m', 'busybox', 'sh', '-c', script]);
      let out = '';
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
      // The boot NIC's driver binds 2 s later.
      await new Promise((r) => setTimeout(r, 2_000));
      const [bootNic, provEnd] = netns.addVeth(node, 'nb', prov, 'pe', { mac: bootMac.toLowerCase() });
      udhcpd(prov, provEnd, '10.9.0');
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      // Before: the first NIC to appear was taken, and the node got 10.8.0.x from the other network.
      expect(out).toMatch(new RegExp(`lease=10\\.9\\.0\\.5\\d if=${bootNic}`));
      expect(code).toBe(0);
    } finally {
      netns.cleanup();
    }
  }, 90_000);
});

describe('installer disk', () => {
  /**
   * partition_disk under busybox sh on a loop device, with /run a tmpfs and no /sys/firmware/efi (a BIOS machine).
   * The kernel here does not scan a loop device's new table as it does a disk's (no /dev/loopNpM appears), so partx
   * adds the partitions after sfdisk wrote them, for partition_disk's wait for them.
   */
  function partition(device: string, parts: string): { status: number | null; out: string } {
    const script = `mount -t tmpfs none /run && mount -t tmpfs none /sys/firmware && . ${LIB}/common.sh && . ${LIB}/disk.sh && ` +
      `sfdisk() { command sfdisk "$@" || return; partx -a "$P_DISK"; return 0; } && ` +
      `P_DISK=${device} P_BOOT=local P_TABLE=gpt PARTS=/run/parts && printf '${parts}' > /run/parts && ` +
      `if partition_disk; then echo ok; else echo "error=$DISK_ERROR"; fi`;
    const r = spawnSync('unshare', ['-m', 'busybox', 'sh', '-c', script], { encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, out: r.stdout + r.stderr };
  }

  it('puts the BIOS boot partition in the gap before the first partition in the disk\'s own sector size (a 4Kn disk failed in sfdisk)', () => {
    requireBinary('busybox', 'apt-get install -y --no-install-recommends busybox-static');
    requireBinary('sfdisk', 'apt-get install -y --no-install-recommends fdisk');
    for (const sector of [512, 4096]) {
      const file = path.join(dir, `disk-${sector}.img`);
      writeFileSync(file, '');
      truncateSync(file, 64 * 2 ** 20);
      const attach = spawnSync('losetup', ['-f', '--show', '-P', '--sector-size', String(sector), file], { encoding: 'utf8' });
      expect(attach.status, attach.stderr).toBe(0);
      const device = attach.stdout.trim();
      try {
        const r = partition(device, '1 32M ext4 /\\n2 rest ext4 /var\\n');
        // Before: "sfdisk /dev/loopN: " and nothing else on a 4Kn disk.
        expect(r.out).not.toContain('error=');
        const firstLba = 16384 / sector + 2;
        const lastLba = 2 ** 20 / sector - 1;
        expect(r.out).toContain(`BIOS boot partition for GRUB in sectors ${firstLba}-${lastLba} of ${device}`);
        expect(r.out).toContain('ok');
        const table = JSON.parse(spawnSync('sfdisk', ['--json', device], { encoding: 'utf8' }).stdout) as { partitiontable: { sectorsize?: number; partitions: Array<{ node: string; start: number; size: number; type: string }> } };
        const bios = table.partitiontable.partitions.find((p) => p.type === '21686148-6449-6E6F-744E-656564454649');
        expect(bios).toMatchObject({ node: `${device}p3`, start: firstLba, size: lastLba - firstLba + 1 });
        // The plan's partitions keep their numbers and the first is 1 MiB aligned.
        expect(table.partitiontable.partitions[0]).toMatchObject({ node: `${device}p1`, start: 2 ** 20 / sector, size: (32 * 2 ** 20) / sector });
      } finally {
        spawnSync('losetup', ['-d', device]);
      }
    }
  });
});
