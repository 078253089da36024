/**
 * Proves the QEMU harness against real peers only (no rackseed code): ISC Kea hands out the address, a small Node
 * HTTP server plays the report endpoint, and a VM booted directly into the test initramfs must take a lease and
 * report with its bearer token. Everything lives in a namespace this test creates; nothing touches the host's links.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netns } from '../support/netns.js';
import { startKea } from '../support/kea.js';
import { requireBinary, waitForOutput } from '../support/process-output.js';
import { buildTestInitramfs, type TestInitramfs } from '../support/initramfs.js';
import { startVm, type Vm } from '../support/qemu.js';

const SERVER_IP = '10.77.0.1';
const HTTP_PORT = 8080;
const MAC = '52:54:00:77:00:01';

/** The report endpoint: appends one JSON line per POST (headers that matter + body) to the file in argv[1]. */
const HTTP_SERVER = `
const http = require('node:http');
const fs = require('node:fs');
const [file, host, port] = process.argv.slice(1);
http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    fs.appendFileSync(file, JSON.stringify({ method: req.method, url: req.url, authorization: req.headers.authorization ?? null,
      contentType: req.headers['content-type'] ?? null, body }) + '\\n');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
}).listen(Number(port), host, () => console.log('listening'));
`;

interface Recorded {
  method: string;
  url: string;
  authorization: string | null;
  contentType: string | null;
  body: string;
}

describe('QEMU harness with real peers (Kea, an HTTP endpoint, the test initramfs)', () => {
  const netns = new Netns();
  let work: string;
  let ns: string;
  let bridge: string;
  let reportsFile: string;
  let initramfs: TestInitramfs;
  let vm: Vm | undefined;

  beforeAll(async () => {
    requireBinary('qemu-system-x86_64', 'apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils ipxe-qemu');
    requireBinary('kea-dhcp4', 'apt-get install -y --no-install-recommends kea-dhcp4-server');
    work = mkdtempSync(join(tmpdir(), 'rackseed-qemu-'));
    reportsFile = join(work, 'reports.jsonl');

    const building = buildTestInitramfs();
    ns = netns.addNamespace('srv');
    bridge = netns.addBridge(ns, 'br');
    netns.addAddress(ns, bridge, `${SERVER_IP}/24`);

    const keaReady = startKea({ netns, ns, iface: bridge, subnet: '10.77.0.0/24', pool: '10.77.0.100 - 10.77.0.150', routers: SERVER_IP, workDir: work });

    const http = netns.spawn(ns, process.execPath, ['-e', HTTP_SERVER, reportsFile, SERVER_IP, String(HTTP_PORT)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const httpReady = waitForOutput(http, /listening/, 15_000, 'report endpoint');

    [initramfs] = await Promise.all([building, keaReady, httpReady]);
  });

  afterAll(async () => {
    if (vm && !vm.exited) await vm.kill();
    netns.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('boots the test initramfs on BIOS, takes a Kea lease and reports with its bearer token', async () => {
    const started = Date.now();
    vm = await startVm({
      netns,
      ns,
      bridge,
      name: 't1',
      mac: MAC,
      firmware: 'bios',
      workDir: work,
      kernel: {
        kernel: initramfs.kernel,
        initrd: initramfs.initrd,
        append: `console=ttyS0 panic=-1 rackseed.server=http://${SERVER_IP}:${HTTP_PORT} rackseed.node=t1 rackseed.mac=${MAC} rackseed.token=abc`,
      },
    });
    await vm.waitForSerial(/RACKSEED-INITRAMFS: up/, 45_000);
    const upAt = Date.now();
    const done = await vm.waitForSerial(/RACKSEED-INITRAMFS: (reported ok|report failed)/, 45_000);
    const reportedAt = Date.now();
    expect(done[1], vm.serial().slice(-2000)).toBe('reported ok');
    const exit = await vm.waitForExit(15_000);
    expect(exit.code).toBe(0);
    const s = (t: number): string => `${((t - started) / 1000).toFixed(1)} s`;
    process.stderr.write(`qemu-harness: /init up ${s(upAt)}, reported ${s(reportedAt)}, exited ${s(Date.now())} after VM start\n`);

    expect(existsSync(reportsFile)).toBe(true);
    const reports = readFileSync(reportsFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Recorded);
    expect(reports).toHaveLength(1);
    const [report] = reports;
    expect(report).toMatchObject({ method: 'POST', url: '/node/v1/report', authorization: 'Bearer abc', contentType: 'application/json' });
    const body = JSON.parse(report?.body ?? '') as { stage: string; detail: { ip: string; kernel: string } };
    expect(body.stage).toBe('initramfs');
    expect(body.detail.kernel).toBe(initramfs.kernelVersion);
    // The address must be one Kea handed out from its pool.
    const m = /^10\.77\.0\.(\d+)$/.exec(body.detail.ip);
    expect(m, body.detail.ip).not.toBeNull();
    expect(Number(m?.[1])).toBeGreaterThanOrEqual(100);
    expect(Number(m?.[1])).toBeLessThanOrEqual(150);

    // SMBIOS facts reach the guest (the firmware tables QEMU builds from -smbios).
    expect(vm.serial()).toMatch(/DMI: rackseed-test qemu-vm/);
  }, 90_000);
});
