import { createSocket, type Socket } from 'node:dgram';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ResolvedNode } from '../../server/model/inventory.js';
import { parseBmcCredentials } from '../../server/power/credentials-file.js';
import { ipmiDriver } from '../../server/power/ipmi.js';
import { powerNodes } from '../../server/power/power-nodes.js';
import type { BmcTarget, PowerAction } from '../../server/power/types.js';
import { startIpmiSim, type IpmiSim } from '../support/ipmi-sim.js';
import { waitFor } from '../support/wait.js';

let sim: IpmiSim;
let swallow: Socket;
let swallowed = 0;

// Cipher suite 3 (HMAC-SHA1/AES-128): ipmi_sim does not answer ipmitool's cipher-suite discovery, which otherwise
// costs ten seconds per call before ipmitool falls back to this same suite.
const target = (port: number, password = sim.password): BmcTarget => ({
  node: 'n1',
  bmc: { address: '127.0.0.1', kind: 'ipmi' },
  credential: { username: sim.username, password, port, cipherSuite: 3 },
});
const run = (action: PowerAction, t = target(sim.port)) => ipmiDriver(t, action, AbortSignal.timeout(20_000));

/** Command lines of running ipmitool processes (to check what a hung call looks like from outside). */
function ipmitoolCommandLines(): string[] {
  const lines: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('ipmitool')) lines.push(argv.join(' '));
    } catch {
      // the process ended while we looked
    }
  }
  return lines;
}

beforeAll(async () => {
  sim = await startIpmiSim();
  await waitFor('ipmi_sim to answer', async () => (await run('status').catch(() => undefined)) !== undefined, 15_000, 200).catch((e: Error) => {
    throw new Error(`${e.message}; ipmi_sim said: ${sim.output()}`);
  });
  // A "BMC" that takes every datagram and never answers.
  swallow = createSocket('udp4');
  swallow.on('message', () => (swallowed += 1));
  await new Promise<void>((resolve) => swallow.bind(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  await sim?.stop();
  swallow?.close();
});

beforeEach(() => {
  sim.setPower(false);
});

describe('IPMI through ipmitool against ipmi_sim', () => {
  it('status reads the chassis power as the simulator reports it', async () => {
    expect(await run('status')).toEqual({ state: 'off' });
    sim.setPower(true);
    expect(await run('status')).toEqual({ state: 'on' });
  });

  it('on, off and cycle reach the simulator as power changes', async () => {
    const before = sim.sets().length;
    await run('on');
    expect(sim.sets().slice(before)).toEqual(['set power 1']);
    expect(await run('status')).toEqual({ state: 'on' });
    await run('off');
    expect(sim.sets().slice(before)).toEqual(['set power 1', 'set power 0']);
    sim.setPower(true);
    const beforeCycle = sim.sets().length;
    await run('cycle');
    // A cycle is power off, then on (ipmi_sim switches back on after its cycle delay).
    await waitFor('the cycle to switch power back on', () => sim.sets().slice(beforeCycle).includes('set power 1'), 15_000);
    expect(sim.sets().slice(beforeCycle)).toEqual(['set power 0', 'set power 1']);
  });

  it('cycle switches a machine that is off on, and says so (it sent a cycle, which the IPMI spec lets a BMC ignore, and reported on)', async () => {
    const before = sim.sets().length;
    expect(await run('cycle')).toEqual({ state: 'on' });
    expect(sim.sets().slice(before)).toEqual(['set power 1']);
  });

  it('pxe sets the boot device to pxe, then powers on a machine that is off', async () => {
    const before = sim.sets().length;
    expect(await run('pxe')).toEqual({ state: 'on' });
    expect(sim.sets().slice(before)).toEqual(['set boot pxe', 'set power 1']);
  });

  it('pxe for a UEFI node sends the boot flags with the EFI bit (ipmitool options=efiboot); legacy and unknown without it', async () => {
    // ipmi_sim keeps only the boot device, so the Set System Boot Options request itself is read from ipmitool's
    // verbose trace: parameter 5, byte 1 = 0x80 valid | 0x20 EFI, byte 2 = 0x04 force PXE.
    const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-ipmitool-trace-'));
    const trace = path.join(dir, 'trace.log');
    writeFileSync(path.join(dir, 'ipmitool'), `#!/bin/sh\nexec /usr/bin/ipmitool -vvv "$@" 2>>'${trace}'\n`);
    chmodSync(path.join(dir, 'ipmitool'), 0o755);
    const savedPath = process.env.PATH;
    process.env.PATH = `${dir}:${savedPath ?? ''}`;
    const bootOptionsSent = () => [...readFileSync(trace, 'utf8').matchAll(/data\s+: (0x05 0x[0-9a-f]{2} 0x[0-9a-f]{2})/g)].map((m) => m[1]);
    try {
      for (const bootMode of ['uefi', 'legacy', undefined] as const) {
        const before = sim.sets().length;
        await run('pxe', { ...target(sim.port), ...(bootMode ? { bootMode } : {}) });
        expect(sim.sets().slice(before)[0]).toBe('set boot pxe');
      }
      expect(bootOptionsSent()).toEqual(['0x05 0xa0 0x04', '0x05 0x80 0x04', '0x05 0x80 0x04']);
    } finally {
      process.env.PATH = savedPath;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('pxe power-cycles a machine that is on', async () => {
    sim.setPower(true);
    const before = sim.sets().length;
    await run('pxe');
    await waitFor('the cycle to complete', () => sim.sets().slice(before).filter((l) => l === 'set power 1').length > 0, 15_000);
    expect(sim.sets().slice(before)).toEqual(['set boot pxe', 'set power 0', 'set power 1']);
  });

  it('a wrong password fails with ipmitool\'s reason and changes nothing', async () => {
    const before = sim.sets().length;
    await expect(run('on', target(sim.port, 'not-the-password'))).rejects.toThrow(/ipmitool: /);
    expect(sim.sets().length).toBe(before);
  });
});

describe('a BMC that never answers', () => {
  it('times out for that node alone, its ipmitool is killed, and the password never is on a command line', async () => {
    const node = (name: string): ResolvedNode =>
      ({ name, group: 'gpu', macs: [], labels: {}, roles: [], kernelArgs: [], hardware: {}, installedBoot: 'local', uefiLoader: 'ipxe.efi', leaseSeconds: 3600, data: {}, bmc: { address: '127.0.0.1', kind: 'ipmi' } }) as ResolvedNode;
    const hungPort = (swallow.address() as AddressInfo).port;
    const creds = parseBmcCredentials(
      `nodes:\n  good: { username: ${sim.username}, password: ${sim.password}, port: ${sim.port}, cipher_suite: 3 }\n  hung: { username: ${sim.username}, password: ${sim.password}, port: ${hungPort}, cipher_suite: 3 }\n`,
      'bmc.yaml',
    );
    sim.setPower(true);
    let seenWhileHung: string[] = [];
    const pending = powerNodes([node('hung'), node('good')], 'status', creds, { concurrency: 4, timeoutMs: 3000 }, (r) => {
      if (r.node === 'good') seenWhileHung = ipmitoolCommandLines().filter((l) => l.includes(`-p ${hungPort}`));
    });
    const results = await pending;
    expect(results.map((r) => [r.node, r.ok, r.state ?? null, r.timedOut ?? false])).toEqual([
      ['hung', false, null, true],
      ['good', true, 'on', false],
    ]);
    expect(results[0]!.error).toBe('no answer within 3 s, during chassis power status');
    expect(swallowed).toBeGreaterThan(0);
    // While the good node finished, the hung node's ipmitool was still waiting; its command line has no password.
    expect(seenWhileHung).toHaveLength(1);
    expect(seenWhileHung[0]).toContain('-E');
    expect(seenWhileHung[0]).not.toContain(sim.password);
    await waitFor('the hung ipmitool to be killed', () => ipmitoolCommandLines().every((l) => !l.includes(`-p ${hungPort}`)), 5000);
  });
});
