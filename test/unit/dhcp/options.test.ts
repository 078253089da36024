import { describe, expect, it } from 'vitest';
import {
  bootfileName,
  clientArchitectures,
  clientIdentifier,
  clientMachineId,
  clientNdi,
  getOption,
  ipxeOptions,
  leaseTime,
  maxMessageSize,
  MessageType,
  messageType,
  optionCodes,
  parameterRequestList,
  parseUserClass,
  relayAgentInfo,
  requestedIp,
  serverIdentifier,
  tftpServerName,
  userClass,
  vendorClassId,
} from '../../../server/protocol/dhcp/options.js';
import { pxeVendorOptions } from '../../../server/protocol/dhcp/pxe.js';
import { fixturePacket } from '../../fixtures/dhcp/load.js';

describe('option accessors on real captures', () => {
  it('dhclient: DISCOVER with a parameter request list, REQUEST with 50 and 54', () => {
    const d = fixturePacket('dhclient-discover');
    expect(messageType(d)).toBe(MessageType.DISCOVER);
    expect(parameterRequestList(d)).toEqual(expect.arrayContaining([1, 3, 6, 15, 28]));
    expect(vendorClassId(d)).toBeUndefined();
    const r = fixturePacket('dhclient-request');
    expect(messageType(r)).toBe(MessageType.REQUEST);
    expect(serverIdentifier(r)).toBe('10.77.0.1');
    expect(requestedIp(r)).toMatch(/^10\.77\.0\.1\d\d$/);
  });

  it('udhcpc: vendor class "udhcp <version>", client id type 1 + MAC, max size 576', () => {
    const p = fixturePacket('udhcpc-discover');
    expect(vendorClassId(p)).toMatch(/^udhcp /);
    const id = clientIdentifier(p)!;
    expect(id.type).toBe(1);
    expect(Buffer.from(id.id).toString('hex')).toBe(p.mac!.replaceAll(':', ''));
    expect(maxMessageSize(p)).toBe(576);
  });

  it('perfdhcp: relayed (giaddr set, hops 1)', () => {
    const p = fixturePacket('perfdhcp-discover');
    expect(messageType(p)).toBe(MessageType.DISCOVER);
    expect(p.giaddr).toBe('10.77.0.50');
    expect(p.hops).toBe(1);
  });

  it('iPXE BIOS: arch 0, UNDI 2.1, user class "iPXE" (raw, not RFC 3004), option 175', () => {
    const p = fixturePacket('ipxe-bios-discover');
    expect(clientArchitectures(p)).toEqual([0]);
    expect(clientNdi(p)).toEqual({ type: 1, major: 2, minor: 1 });
    expect(vendorClassId(p)).toBe('PXEClient:Arch:00000:UNDI:002001');
    expect(userClass(p)).toEqual({ format: 'raw', classes: ['iPXE'] });
    const ipxe = ipxeOptions(p)!;
    expect(ipxe.length).toBeGreaterThan(5);
    expect(ipxe.find((s) => s.code === 235)?.data.length).toBe(3); // version major.minor.patch
    expect(clientMachineId(p)).toMatchObject({ type: 0, text: expect.stringMatching(/^[0-9a-f]{8}-/) });
  });

  it('iPXE UEFI: arch 7, "PXEClient:Arch:00007:UNDI:003010"', () => {
    const p = fixturePacket('ipxe-uefi-discover');
    expect(clientArchitectures(p)).toEqual([7]);
    expect(vendorClassId(p)).toBe('PXEClient:Arch:00007:UNDI:003010');
    expect(clientNdi(p)).toEqual({ type: 1, major: 3, minor: 10 });
    expect(ipxeOptions(p)).toBeDefined();
  });

  it('Kea OFFER: lease time and server id', () => {
    const p = fixturePacket('kea-offer-to-ipxe-bios');
    expect(messageType(p)).toBe(MessageType.OFFER);
    expect(leaseTime(p)).toBe(600);
    expect(serverIdentifier(p)).toBe('10.77.0.1');
    expect(p.op).toBe(2);
  });
});

describe('option accessors on synthetic packets', () => {
  it('relay agent information keeps sub-options and the raw bytes', () => {
    const p = fixturePacket('synthetic-relayed-discover-opt82');
    const rai = relayAgentInfo(p)!;
    expect(rai.subOptions?.map((s) => s.code)).toEqual([1, 2]);
    expect(Buffer.from(rai.subOptions![0]!.data).toString()).toBe('Gi1/0/17:vlan210');
    expect(rai.raw).toEqual(getOption(p, 82));
    expect(optionCodes(p).at(-1)).toBe(82);
  });

  it('concatenates a split option (RFC 3396) before parsing option 43', () => {
    const p = fixturePacket('synthetic-ack-split-option');
    expect(p.options.filter((o) => o.code === 43).length).toBeGreaterThan(1);
    const pxe = pxeVendorOptions(p)!;
    expect(pxe.discoveryControl).toBe(7);
    expect(pxe.bootServers).toHaveLength(5);
    expect(pxe.bootMenu?.[3]?.description).toMatch(/^rackseed entry 3/);
    expect(pxe.menuPrompt).toEqual({ timeout: 10, prompt: 'rackseed: choose an image' });
  });

  it('reads options overloaded into the file field', () => {
    const p = fixturePacket('synthetic-offer-overload');
    expect(p.options.some((o) => o.area === 'file' && o.code === 119)).toBe(true);
    expect(getOption(p, 119)?.length).toBe(120);
    expect(pxeVendorOptions(p)?.bootMenu?.map((m) => m.type)).toEqual([0x8000, 0x8001]);
  });

  it('treats malformed fixed-size options as absent', () => {
    const p = fixturePacket('udhcpc-discover');
    const bad = { ...p, options: p.options.map((o) => (o.code === 53 ? { ...o, data: Uint8Array.of(1, 2) } : o)) };
    expect(messageType(bad)).toBeUndefined();
    expect(tftpServerName(p)).toBeUndefined();
    expect(bootfileName(p)).toBeUndefined();
  });
});

describe('user class (option 77)', () => {
  it.each([
    ['RFC 3004 instances', [4, 105, 80, 88, 69, 3, 102, 111, 111], { format: 'rfc3004', classes: ['iPXE', 'foo'] }],
    ['iPXE raw string', [105, 80, 88, 69], { format: 'raw', classes: ['iPXE'] }],
    ['zero-length instance', [0, 1, 65], { format: 'raw', classes: ['\u0000\u0001A'] }],
  ])('%s', (_name, bytes, expected) => {
    expect(parseUserClass(Uint8Array.from(bytes))).toEqual(expected);
  });
});
