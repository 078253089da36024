import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureBytes } from '../fixtures/dhcp/load.js';
import { Netns } from '../support/netns.js';
import { startRackseedProcess, type RackseedProcess } from '../support/rackseed-process.js';
import { sendRawUdp } from '../support/raw-udp.js';
import { waitFor } from '../support/wait.js';

/**
 * One datagram from source port 0 used to end the whole server: proxyDHCP answers a port-4011 request on the
 * sender's port, the TFTP adapter answers a write request (and the tftp package a read request) on it, and Node's
 * dgram throws synchronously for port 0 inside a socket listener. The server runs here as an operator runs it, in a
 * namespace of its own, and gets such datagrams on every UDP port it serves; it must count them and keep serving.
 */
const SERVER = '10.0.0.1';

let netns: Netns;
let ns: string;
let server: RackseedProcess;
let work: string;

interface NetbootStats {
  dhcp: { received: number; dropped: Record<string, number>; proxyAcks: number };
  tftp: { requests: number; transfersOk: number; errors: Record<string, number> };
}
const stats = () => server.api<NetbootStats>('/netboot/stats');

/** An RRQ or WRQ for `file` in octet mode. */
const tftpRequest = (op: 1 | 2, file: string) => Buffer.concat([Buffer.from([0, op]), Buffer.from(`${file}\0octet\0`, 'latin1')]);

beforeAll(async () => {
  if (!existsSync('/usr/lib/ipxe/undionly.kpxe')) throw new Error('/usr/lib/ipxe/undionly.kpxe is missing: apt-get install -y ipxe');
  netns = new Netns();
  ns = netns.addNamespace('p0');
  const br = netns.addBridge(ns, 'p0br');
  netns.addAddress(ns, br, `${SERVER}/24`);
  work = mkdtempSync(path.join(tmpdir(), 'rackseed-port0-'));
  server = await startRackseedProcess({
    netns,
    ns,
    httpAddress: SERVER,
    config: `tftp:\n  listen: ${SERVER}\n  root: /usr/lib/ipxe\ndhcp:\n  mode: proxy\n  interface: ${br}\n  server_ip: ${SERVER}\n`,
    // The machine of the recorded request is known: lines about it must name its node.
    inventory: 'cluster:\n  name: port0\ngroups:\n  g: {}\nnodes:\n  - { name: pxe04, mac: "52:54:00:7e:00:04", group: g }\n',
    waitFor: [/DHCP listening/, /tftp: listening/],
  });
}, 60_000);

afterAll(async () => {
  await server?.stop().catch(() => undefined);
  netns?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('datagrams from source port 0', () => {
  it('proxyDHCP counts and drops them on ports 67 and 4011, and still answers the next port-4011 request', async () => {
    const request = fixtureBytes('ipxe-bios-request');
    sendRawUdp(netns, ns, { address: SERVER, port: 4011 }, 0, request);
    sendRawUdp(netns, ns, { address: SERVER, port: 67 }, 0, request);
    await waitFor('both port-0 datagrams counted', () => (stats().dhcp.dropped['SOURCE_PORT_ZERO'] ?? 0) >= 2);
    expect(server.child.exitCode).toBeNull();

    const acksBefore = stats().dhcp.proxyAcks;
    sendRawUdp(netns, ns, { address: SERVER, port: 4011 }, 40000, request);
    await waitFor('the ordinary request answered', () => stats().dhcp.proxyAcks === acksBefore + 1);
    expect(stats().dhcp.dropped['SOURCE_PORT_ZERO']).toBe(2);
    const sent = () =>
      server
        .log()
        .split('\n')
        .filter((l) => l.includes('proxyDHCP boot file sent'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    await waitFor('the boot file line logged', () => sent().length > 0);
    expect(sent().at(-1)).toMatchObject({ node: 'pxe04', mac: '52:54:00:7e:00:04' });
  });

  it('TFTP counts read and write requests from port 0 as protocol errors and still serves atftp', async () => {
    const before = stats().tftp;
    sendRawUdp(netns, ns, { address: SERVER, port: 69 }, 0, tftpRequest(1, 'undionly.kpxe'));
    sendRawUdp(netns, ns, { address: SERVER, port: 69 }, 0, tftpRequest(2, 'evil.bin'));
    await waitFor('both port-0 requests seen', () => stats().tftp.requests >= before.requests + 2);
    expect(server.child.exitCode).toBeNull();
    expect(stats().tftp.errors['protocol']).toBe((before.errors['protocol'] ?? 0) + 2);

    const local = path.join(work, 'undionly.kpxe');
    const r = netns.run(ns, 'atftp', ['-g', '-r', 'undionly.kpxe', '-l', local, SERVER, '69']);
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(local)).toBe(true);
    expect(stats().tftp.transfersOk).toBe(before.transfersOk + 1);
  });
});
