import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  async function fetchPlan(port: number): Promise<{ code: number | null; out: string; ms: number }> {
    const started = Date.now();
    const script = `mount -t tmpfs none /run && . ${LIB}/common.sh && . ${LIB}/plan.sh && SERVER=http://127.0.0.1:${port} TOKEN=t && if fetch_plan; then echo "image=$P_IMAGE"; else echo "error=$PLAN_ERROR"; exit 1; fi`;
    const child = spawn('unshare', ['-m', 'busybox', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    return { code, out, ms: Date.now() - started };
  }

  it('asks again while the server cannot be reached (restarting), and stops at once on an error answer (the token is spent or refused)', async () => {
    requireBinary('busybox', 'apt-get install -y --no-install-recommends busybox-static');
    const port = await unusedLoopbackPort();
    let status = 200;
    let server: Server | undefined;
    const late = setTimeout(() => {
      server = createServer((_req, res) => {
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
      const refused = await fetchPlan(port);
      expect(refused.code).toBe(1);
      expect(refused.out).toMatch(/error=could not fetch the install plan from .*409/);
      expect(refused.ms).toBeLessThan(30_000);
    } finally {
      clearTimeout(late);
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    }
  }, 120_000);
});
