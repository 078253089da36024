/**
 * Regenerates the DHCP golden fixtures from real clients. Run by hand as root, never in the test suite:
 *
 *   npx tsx test/support/capture-dhcp.ts             capture every client (about 2 minutes), then write dumps
 *   npx tsx test/support/capture-dhcp.ts --no-server capture without Kea: DISCOVERs only
 *   npx tsx test/support/capture-dhcp.ts --dumps-only rewrite the .dump.txt files and the synthetic goldens
 *
 * Everything runs inside namespaces this script creates: a switch namespace with a bridge (tcpdump and QEMU live
 * there), a client namespace (dhclient, udhcpc, perfdhcp) and a server namespace running ISC Kea so that the
 * clients also send a REQUEST. No packet ever reaches a host interface.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { readPcap } from './pcap.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { decode, encode } from '../../server/protocol/dhcp/codec.js';
import { dumpPacket } from '../../server/protocol/dhcp/dump.js';
import { messageType, messageTypeName } from '../../server/protocol/dhcp/options.js';
import { bytesEqual } from '../../server/protocol/dhcp/bytes.js';
import { SYNTHETIC } from '../fixtures/dhcp/synthetic.js';
import { Netns } from './netns.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/dhcp');
const PCAPS = join(FIXTURES, 'pcap');
const SUBNET = '10.77.0';


function writeFixture(name: string, payload: Uint8Array): void {
  writeFileSync(join(FIXTURES, `${name}.bin`), payload);
  console.log(`  wrote ${name}.bin (${payload.length} bytes)`);
}

/** Keeps the first packet of each message type the client sent, and the first of each the server sent it. */
function extract(client: string, pcapFile: string): void {
  const seen = new Set<string>();
  for (const d of readPcap(readFileSync(pcapFile))) {
    const r = decode(d.payload);
    if (!r.ok) {
      console.log(`  skipped undecodable datagram: ${r.error.code} ${r.error.message}`);
      continue;
    }
    const type = messageTypeName(messageType(r.packet) ?? 0)?.toLowerCase() ?? 'unknown';
    const name = r.packet.op === 1 ? `${client}-${type}` : `kea-${type}-to-${client}`;
    if (seen.has(name)) continue;
    seen.add(name);
    writeFixture(name, d.payload);
  }
  if (!seen.has(`${client}-discover`)) console.log(`  WARNING: no DISCOVER captured from ${client}`);
}

interface ClientRun {
  readonly name: string;
  /** A veth into the client namespace, or a tap for QEMU in the switch namespace. */
  readonly link: 'veth' | 'tap';
  /** perfdhcp acts as a relay (giaddr = its own address), so its interface needs one. */
  readonly address?: string;
  /** Starts the client on `ifname`; resolves when it is done or its capture window is over. */
  readonly run: (h: Netns, env: Env, ifname: string) => Promise<void>;
}

interface Env {
  readonly sw: string;
  readonly cli: string;
  readonly br: string;
  readonly tmp: string;
  readonly index: number;
}

const mac = (i: number): string => `52:54:00:7e:00:${i.toString(16).padStart(2, '0')}`;

async function runFor(h: Netns, ns: string, cmd: string, args: string[], ms: number): Promise<void> {
  const child = h.spawn(ns, cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = (d: Buffer): void => {
    if (process.env.CAPTURE_VERBOSE) process.stdout.write(`    ${cmd}: ${d.toString()}`);
  };
  child.stdout?.on('data', log);
  child.stderr?.on('data', log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await Promise.race([exited, sleep(ms)]);
  await h.stop(child);
}

/**
 * Returns [client interface, capture interface]. Capturing on the client's own bridge port rather than on the
 * bridge device catches its very first packet: a client that sends within milliseconds of link-up (udhcpc) was
 * invisible on the bridge device.
 */
function makeLink(h: Netns, env: Env, client: ClientRun): [string, string] {
  if (client.link === 'tap') {
    const tap = h.addTap(env.sw, `t${env.index}`, { master: env.br });
    return [tap, tap];
  }
  const [inner, port] = h.addVeth(env.cli, `c${env.index}`, env.sw, `p${env.index}`, { mac: mac(env.index), masterB: env.br });
  if (client.address) h.addAddress(env.cli, inner, client.address);
  return [inner, port];
}

async function qemu(h: Netns, env: Env, tap: string, uefi: boolean): Promise<void> {
  const rom = uefi ? '/usr/lib/ipxe/qemu/efi-e1000.rom' : '/usr/lib/ipxe/qemu/pxe-e1000.rom';
  const args = [
    '-accel', 'tcg',
    '-machine', uefi ? 'q35' : 'pc',
    '-m', '256',
    '-display', 'none',
    '-vga', 'none',
    '-monitor', 'none',
    '-serial', `file:${join(env.tmp, `qemu-${env.index}.log`)}`,
    '-no-reboot',
    '-boot', 'n',
    '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
    '-device', `e1000,netdev=n0,mac=${mac(env.index)},romfile=${rom}`,
  ];
  if (uefi) {
    const vars = join(env.tmp, 'OVMF_VARS_4M.fd');
    copyFileSync('/usr/share/OVMF/OVMF_VARS_4M.fd', vars);
    args.push(
      '-drive', 'if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
      '-drive', `if=pflash,format=raw,unit=1,file=${vars}`,
    );
  }
  // iPXE's DHCP is done by ~6 s (BIOS) / ~10 s (UEFI) under TCG; 25 s also covers its retransmits.
  await runFor(h, env.sw, 'qemu-system-x86_64', args, 25_000);
}

const CLIENTS: readonly ClientRun[] = [
  {
    name: 'dhclient',
    link: 'veth',
    run: async (h, env, ifname) => {
      const pidfile = join(env.tmp, 'dhclient.pid');
      // -d keeps it in the foreground so the PID is ours; the pidfile is checked too, in case it forked anyway.
      const args = ['-d', '-1', '-sf', '/bin/true', '-lf', join(env.tmp, 'dhclient.leases'), '-pf', pidfile, ifname];
      await runFor(h, env.cli, 'dhclient', args, 12_000);
      if (existsSync(pidfile)) {
        const pid = Number(readFileSync(pidfile, 'utf8').trim());
        if (Number.isInteger(pid) && pid > 1) {
          h.track(pid);
          h.kill(pid, 'SIGKILL');
        }
      }
    },
  },
  {
    name: 'udhcpc',
    link: 'veth',
    run: async (h, env, ifname) => {
      await runFor(h, env.cli, 'busybox', ['udhcpc', '-i', ifname, '-n', '-q', '-s', '/bin/true'], 15_000);
    },
  },
  {
    name: 'perfdhcp',
    link: 'veth',
    address: `${SUBNET}.50/24`,
    run: async (h, env, ifname) => {
      await runFor(h, env.cli, 'perfdhcp', ['-4', '-l', ifname, '-r', '1', '-n', '2', '-R', '1'], 10_000);
    },
  },
  { name: 'ipxe-bios', link: 'tap', run: (h, env, tap) => qemu(h, env, tap, false) },
  { name: 'ipxe-uefi', link: 'tap', run: (h, env, tap) => qemu(h, env, tap, true) },
];

function keaConfig(ifname: string, tmp: string): string {
  return JSON.stringify({
    Dhcp4: {
      'interfaces-config': { interfaces: [ifname] },
      'lease-database': { type: 'memfile', persist: false },
      'valid-lifetime': 600,
      subnet4: [{ id: 1, subnet: `${SUBNET}.0/24`, pools: [{ pool: `${SUBNET}.100 - ${SUBNET}.199` }] }],
      loggers: [{ name: 'kea-dhcp4', output_options: [{ output: join(tmp, 'kea.log') }], severity: 'INFO' }],
    },
  });
}

async function capture(withServer: boolean, only: ReadonlySet<string>): Promise<void> {
  const h = new Netns();
  const tmp = mkdtempSync(join(tmpdir(), 'rackseed-capture-'));
  try {
    const sw = h.addNamespace('sw');
    const cli = h.addNamespace('cl');
    const br = h.addBridge(sw, 'br');
    if (withServer) {
      const srv = h.addNamespace('sv');
      const [s0] = h.addVeth(srv, 's0', sw, 'sp', { masterB: br });
      h.addAddress(srv, s0, `${SUBNET}.1/24`);
      const conf = join(tmp, 'kea.json');
      writeFileSync(conf, keaConfig(s0, tmp));
      const kea = h.spawn(srv, 'kea-dhcp4', ['-c', conf], {
        stdio: ['ignore', 'ignore', 'ignore'],
        env: { ...process.env, KEA_LOCKFILE_DIR: tmp, KEA_PIDFILE_DIR: tmp },
      });
      await sleep(1_500);
      if (kea.exitCode !== null) throw new Error(`kea-dhcp4 exited (${kea.exitCode}); see ${join(tmp, 'kea.log')}`);
    }
    mkdirSync(PCAPS, { recursive: true });
    let index = 1;
    for (const client of CLIENTS) {
      const env: Env = { sw, cli, br, tmp, index: index++ };
      if (only.size > 0 && !only.has(client.name)) continue;
      console.log(`${client.name}:`);
      const pcap = join(PCAPS, `${client.name}.pcap`);
      const [ifname, captureIf] = makeLink(h, env, client);
      // -Z root: keep the pcap owned by the user running the script, not tcpdump's drop-privileges account.
      const dumpArgs = ['-i', captureIf, '-Z', 'root', '-n', '-U', '--immediate-mode', '-s', '0', '-w', pcap, 'udp and (port 67 or port 68)'];
      const dump = h.spawn(sw, 'tcpdump', dumpArgs);
      await new Promise<void>((resolve, reject) => {
        dump.stderr?.on('data', (d: Buffer) => d.toString().includes('listening on') && resolve());
        dump.once('exit', (code) => reject(new Error(`tcpdump exited with ${code}`)));
      });
      await client.run(h, env, ifname);
      // Without immediate mode, packets wait in a TPACKET_V3 ring block that tcpdump drops on SIGINT: a client
      // that is done in 0.1 s (udhcpc) left an empty pcap. Immediate mode plus a short grace period fixes both.
      await sleep(1_000);
      await h.stop(dump, 'SIGINT');
      extract(client.name, pcap);
    }
  } finally {
    h.cleanup();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The builder-made goldens: written from test/fixtures/dhcp/synthetic.ts so the tests can compare bytes. */
function writeSynthetic(): void {
  for (const [name, make] of Object.entries(SYNTHETIC)) writeFixture(name, make());
}

function writeDumps(): void {
  for (const f of readdirSync(FIXTURES).filter((n) => n.endsWith('.bin')).sort()) {
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, f)));
    const r = decode(bytes);
    if (!r.ok) throw new Error(`${f}: ${r.error.code} ${r.error.message}`);
    if (!bytesEqual(encode(r.packet), bytes)) throw new Error(`${f}: encode(decode(b)) differs from b`);
    writeFileSync(join(FIXTURES, f.replace(/\.bin$/, '.dump.txt')), dumpPacket(r.packet));
  }
  console.log('dumps written');
}

const argv = process.argv.slice(2);
if (!argv.includes('--dumps-only')) {
  if (process.getuid?.() !== 0) throw new Error('capturing needs root (namespaces, tap devices, tcpdump)');
  const only = new Set(argv.filter((a) => !a.startsWith('--')));
  await capture(!argv.includes('--no-server'), only);
}
writeSynthetic();
writeDumps();
