/**
 * TFTP boot storm: N concurrent atftp clients (default and maximum 200) fetch ipxe.efi from rackseed's TFTP
 * adapter and from tftpd-hpa, one after the other in the same run, with the same client options for both
 * (tftpd-hpa does not implement windowsize and simply leaves it out of its OACK, so those clients fall back to
 * lock-step). Everything stays on 127.0.0.1. The last line of output is one JSON object for CI.
 *
 *   npx tsx bench/tftp.ts            TFTP_BENCH_CLIENTS=50 npx tsx bench/tftp.ts
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { rmSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const MAX_CLIENTS = 200;
const CLIENTS = Math.min(MAX_CLIENTS, Math.max(1, Number(process.env.TFTP_BENCH_CLIENTS ?? MAX_CLIENTS) || MAX_CLIENTS));
const FILE = 'ipxe.efi';
const SOURCE = `/usr/lib/ipxe/${FILE}`;
const CLIENT_OPTIONS = ['blksize 1468', 'windowsize 16'];
const HOST = '127.0.0.1';
const CLIENT_TIMEOUT_MS = 120_000;
const here = dirname(fileURLToPath(import.meta.url));

const children = new Set<ChildProcess>();
let tmp: string | null = null;

function cleanupSync(): void {
  for (const c of children) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
  if (tmp) {
    rmSync(tmp, { recursive: true, force: true });
    tmp = null;
  }
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    cleanupSync();
    process.exit(130);
  });
}

function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}

function need(bin: string, apt: string): void {
  if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) {
    process.stderr.write(`${bin} not found. Run: apt-get install -y --no-install-recommends ${apt}\n`);
    process.exit(1);
  }
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, HOST, () => r()));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function stopChild(c: ChildProcess, graceMs = 3000): Promise<void> {
  if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  process.kill(c.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

interface FetchResult {
  ok: boolean;
  bytes: number;
  ms: number;
  /** performance.now() when the client process exited. */
  end: number;
  why?: string;
}

function atftpFetch(port: number, local: string): Promise<{ code: number | null; stderr: string; ms: number; end: number }> {
  const args = [...CLIENT_OPTIONS.flatMap((o) => ['--option', o]), '-g', '-r', FILE, '-l', local, HOST, String(port)];
  const t0 = performance.now();
  return new Promise((resolveFetch) => {
    const c = track(spawn('atftp', args, { stdio: ['ignore', 'ignore', 'pipe'] }));
    let stderr = '';
    c.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 2000) stderr += d.toString();
    });
    const timer = setTimeout(() => {
      if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, 'SIGKILL');
    }, CLIENT_TIMEOUT_MS);
    c.once('error', (err) => {
      clearTimeout(timer);
      const end = performance.now();
      resolveFetch({ code: null, stderr: String(err), ms: end - t0, end });
    });
    c.once('close', (code) => {
      clearTimeout(timer);
      const end = performance.now();
      resolveFetch({ code, stderr, ms: end - t0, end });
    });
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function verify(local: string, want: Buffer, wantSha: string): Promise<{ ok: boolean; why?: string }> {
  let got: Buffer;
  try {
    got = await readFile(local);
  } catch {
    return { ok: false, why: 'no output file' };
  }
  if (got.length !== want.length) return { ok: false, why: `size ${got.length} != ${want.length}` };
  if (sha(got) !== wantSha) return { ok: false, why: 'sha256 mismatch' };
  return { ok: true };
}

interface StormResult {
  label: string;
  wallMs: number;
  bytes: number;
  failures: number;
  results: FetchResult[];
}

async function storm(label: string, port: number, outDir: string, want: Buffer, wantSha: string): Promise<StormResult> {
  await mkdir(outDir, { recursive: true });
  const t0 = performance.now();
  const runs: Array<Promise<FetchResult>> = [];
  for (let i = 0; i < CLIENTS; i++) {
    const local = join(outDir, `c${i}`);
    runs.push(
      atftpFetch(port, local).then(async (r) => {
        const base = { ms: r.ms, end: r.end };
        if (r.code !== 0) return { ...base, ok: false, bytes: 0, why: `exit ${r.code}: ${r.stderr.trim().split('\n').pop() ?? ''}` };
        const v = await verify(local, want, wantSha);
        return v.ok ? { ...base, ok: true, bytes: want.length } : { ...base, ok: false, bytes: 0, why: v.why ?? 'bad' };
      }),
    );
  }
  const results = await Promise.all(runs);
  // Wall time ends when the last client process exits; reading the files back to verify them is not counted.
  const wallMs = Math.max(...results.map((r) => r.end)) - t0;
  await rm(outDir, { recursive: true, force: true });
  return { label, wallMs, bytes: results.reduce((a, r) => a + r.bytes, 0), failures: results.filter((r) => !r.ok).length, results };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

function describe(s: StormResult): number {
  const mbps = s.bytes / 1e6 / (s.wallMs / 1000);
  const times = s.results.map((r) => r.ms).sort((a, b) => a - b);
  console.log(
    `${s.label.padEnd(10)} ${CLIENTS} clients: wall ${(s.wallMs / 1000).toFixed(2)} s, ${(s.bytes / 1e6).toFixed(1)} MB moved, ` +
      `${mbps.toFixed(1)} MB/s, failures ${s.failures}; per client p50 ${pct(times, 50).toFixed(0)} ms, ` +
      `p95 ${pct(times, 95).toFixed(0)} ms, max ${pct(times, 100).toFixed(0)} ms`,
  );
  const reasons = new Map<string, number>();
  for (const r of s.results) if (!r.ok) reasons.set(r.why ?? '?', (reasons.get(r.why ?? '?') ?? 0) + 1);
  for (const [why, n] of reasons) console.log(`${''.padEnd(10)} ${n} x ${why}`);
  return mbps;
}

async function main(): Promise<boolean> {
  need('atftp', 'atftp');
  need('in.tftpd', 'tftpd-hpa');
  tmp = await mkdtemp(join(tmpdir(), 'rackseed-bench-tftp-'));
  const root = join(tmp, 'root');
  await mkdir(root);
  await copyFile(SOURCE, join(root, FILE));
  // tftpd-hpa drops to the tftp user and chroots into the root (--secure): it must be able to read both.
  await chmod(tmp, 0o755);
  await chmod(root, 0o755);
  await chmod(join(root, FILE), 0o644);
  const want = await readFile(join(root, FILE));
  const wantSha = sha(want);
  console.log(`tftp bench: ${CLIENTS} concurrent atftp clients, ${FILE} (${want.length} bytes), client options: ${CLIENT_OPTIONS.join(', ')}`);

  // rackseed, in its own process.
  const child = track(
    spawn(process.execPath, ['--import', 'tsx', join(here, 'lib', 'tftp-server-child.ts'), root], {
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  const lines = createInterface({ input: child.stdout! });
  const lineQueue: string[] = [];
  const waiters: Array<(l: string) => void> = [];
  lines.on('line', (l) => {
    const w = waiters.shift();
    if (w) w(l);
    else lineQueue.push(l);
  });
  const nextLine = (): Promise<string> =>
    new Promise((r, reject) => {
      const q = lineQueue.shift();
      if (q !== undefined) return r(q);
      const t = setTimeout(() => reject(new Error('rackseed tftp child did not answer')), 30_000);
      waiters.push((l) => {
        clearTimeout(t);
        r(l);
      });
    });
  const { port: rackseedPort } = JSON.parse(await nextLine()) as { port: number };

  const tftpdPort = await freeUdpPort();
  const tftpd = track(
    spawn('in.tftpd', ['--foreground', '--address', `${HOST}:${tftpdPort}`, '--secure', root], { stdio: ['ignore', 'ignore', 'inherit'] }),
  );
  console.log(`rackseed   pid ${child.pid} on udp ${HOST}:${rackseedPort}`);
  console.log(`tftpd-hpa  pid ${tftpd.pid} on udp ${HOST}:${tftpdPort} (in.tftpd --foreground --secure)`);

  // Warm-up: both servers answer, the file is in the page cache, and the JIT has seen one transfer.
  for (const [label, port] of [['rackseed', rackseedPort], ['tftpd-hpa', tftpdPort]] as const) {
    let ready = false;
    for (let attempt = 0; attempt < 20 && !ready; attempt++) {
      const local = join(tmp, `warm-${label}`);
      const r = await atftpFetch(port, local);
      ready = r.code === 0 && (await verify(local, want, wantSha)).ok;
      if (!ready) await new Promise((res) => setTimeout(res, 250));
    }
    if (!ready) throw new Error(`${label} did not serve ${FILE} during warm-up`);
  }

  const rs = await storm('rackseed', rackseedPort, join(tmp, 'out-rackseed'), want, wantSha);
  const hpa = await storm('tftpd-hpa', tftpdPort, join(tmp, 'out-tftpd'), want, wantSha);

  const statsLine = nextLine().catch(() => '');
  child.kill('SIGTERM');
  const stats = await statsLine;
  await stopChild(child);
  await stopChild(tftpd);

  const rsMBps = describe(rs);
  const hpaMBps = describe(hpa);
  if (stats) console.log(`rackseed server counters: ${JSON.stringify((JSON.parse(stats) as { stats: unknown }).stats)}`);
  console.log('MB = 10^6 bytes; wall time = first client spawned to last client exited, per server.');
  const round = (n: number): number => Math.round(n * 100) / 100;
  console.log(
    JSON.stringify({
      bench: 'tftp',
      rackseed_MBps: round(rsMBps),
      tftpd_hpa_MBps: round(hpaMBps),
      ratio: round(hpaMBps > 0 ? rsMBps / hpaMBps : 0),
      failures_rackseed: rs.failures,
      failures_tftpd_hpa: hpa.failures,
    }),
  );
  // A transfer that failed on either side makes the ratio meaningless: say so in the exit status, not only in the JSON.
  if (rs.failures > 0 || hpa.failures > 0) {
    console.error(`bench:tftp: ${rs.failures} rackseed and ${hpa.failures} tftpd-hpa transfer(s) failed: the figures above do not compare equal work`);
    return true;
  }
  return false;
}

main().then(
  (failed) => {
    cleanupSync();
    process.exit(failed ? 1 : 0);
  },
  (err: unknown) => {
    console.error(err);
    cleanupSync();
    process.exit(1);
  },
);
