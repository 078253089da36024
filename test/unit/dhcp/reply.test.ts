import { describe, expect, it } from 'vitest';
import { buildPacket } from '../../../server/protocol/dhcp/builder.js';
import { cString, fromLatin1, latin1 } from '../../../server/protocol/dhcp/bytes.js';
import { decode, encode } from '../../../server/protocol/dhcp/codec.js';
import { decideBoot, type BootChoice, type BootContext } from '../../../server/protocol/dhcp/decision.js';
import {
  bootfileName,
  getOption,
  hasOption,
  leaseTime,
  MessageType,
  messageType,
  Opt,
  optionCodes,
  serverIdentifier,
  vendorClassId,
} from '../../../server/protocol/dhcp/options.js';
import { BOOTREQUEST, type DhcpPacket } from '../../../server/protocol/dhcp/packet.js';
import { pxeVendorOptions } from '../../../server/protocol/dhcp/pxe.js';
import { buildAck, buildNak, buildOffer, buildProxyAck, buildProxyOffer } from '../../../server/protocol/dhcp/reply.js';
import { fixturePacket } from '../../fixtures/dhcp/load.js';

const server = { serverIp: '10.1.0.2' };
const ctx: BootContext = { serverIp: '10.1.0.2', httpBaseUrl: 'http://10.1.0.2:8080', loaderFor: () => undefined };
const lease = { yiaddr: '10.1.0.57', leaseSeconds: 3600, subnetMask: '255.255.255.0', routers: ['10.1.0.1'], dnsServers: ['10.1.0.2'] };

function boot(p: DhcpPacket): BootChoice {
  const d = decideBoot(p, ctx);
  if (d.kind !== 'boot') throw new Error(`expected a boot decision, got ${d.reason}`);
  return d;
}

/** Every reply must survive the wire: encode, decode, and compare. */
function wire(p: DhcpPacket): DhcpPacket {
  const bytes = encode(p);
  expect(bytes.length).toBeGreaterThanOrEqual(300);
  const r = decode(bytes);
  if (!r.ok) throw new Error(r.error.message);
  expect(Buffer.from(encode(r.packet)).equals(Buffer.from(bytes))).toBe(true);
  return r.packet;
}

const relayed = fixturePacket('synthetic-relayed-discover-opt82');
const ipxeBios = fixturePacket('ipxe-bios-discover');
const uefiPxe = buildPacket({
  op: BOOTREQUEST,
  xid: 0x77,
  flags: 0x8000,
  chaddr: Uint8Array.of(0x52, 0x54, 0, 0, 0, 7),
  options: new Map([
    [Opt.messageType, Uint8Array.of(MessageType.DISCOVER)],
    [Opt.vendorClassId, fromLatin1('PXEClient:Arch:00007:UNDI:003016')],
    [Opt.clientArch, Uint8Array.of(0, 7)],
    [Opt.clientMachineId, Uint8Array.of(0, ...Array.from({ length: 16 }, (_, i) => i))],
  ]),
});

describe('full-mode replies', () => {
  it('OFFER: identity copied from the request, lease options, boot file in siaddr/file, 82 echoed last', () => {
    const p = wire(buildOffer(relayed, server, lease, boot(relayed)));
    expect(p).toMatchObject({ op: 2, xid: relayed.xid, giaddr: '10.1.0.1', yiaddr: '10.1.0.57', siaddr: '10.1.0.2', hops: 0 });
    expect(p.chaddr).toEqual(relayed.chaddr);
    expect(messageType(p)).toBe(MessageType.OFFER);
    expect(serverIdentifier(p)).toBe('10.1.0.2');
    expect(leaseTime(p)).toBe(3600);
    expect(cString(p.file)).toBe('undionly.kpxe');
    const codes = optionCodes(p);
    expect(codes.slice(0, 2)).toEqual([53, 54]);
    expect(codes.at(-1)).toBe(82);
    expect(getOption(p, 82)).toEqual(getOption(relayed, 82));
  });

  it('ACK for iPXE carries the script URL in option 67 and the file field', () => {
    const p = wire(buildAck(ipxeBios, server, lease, boot(ipxeBios)));
    expect(messageType(p)).toBe(MessageType.ACK);
    expect(bootfileName(p)).toBe('http://10.1.0.2:8080/boot.ipxe');
    expect(cString(p.file)).toBe('http://10.1.0.2:8080/boot.ipxe');
    expect(getOption(p, Opt.clientId)).toEqual(getOption(ipxeBios, Opt.clientId)); // RFC 6842
  });

  it('a UEFI HTTP boot OFFER says HTTPClient', () => {
    const req = buildPacket({
      op: BOOTREQUEST,
      xid: 9,
      chaddr: Uint8Array.of(0x52, 0x54, 0, 0, 0, 9),
      options: new Map([
        [Opt.messageType, Uint8Array.of(MessageType.DISCOVER)],
        [Opt.vendorClassId, fromLatin1('HTTPClient:Arch:00016:UNDI:003001')],
        [Opt.clientArch, Uint8Array.of(0, 0x10)],
      ]),
    });
    const p = wire(buildOffer(req, server, lease, boot(req)));
    expect(vendorClassId(p)).toBe('HTTPClient');
    expect(bootfileName(p)).toBe('http://10.1.0.2:8080/ipxe/snponly.efi');
  });

  it('NAK: no addresses, no lease, no boot file; relayed NAK sets the broadcast bit', () => {
    const p = wire(buildNak(relayed, server, 'address not on this network'));
    expect(messageType(p)).toBe(MessageType.NAK);
    expect(p).toMatchObject({ yiaddr: '0.0.0.0', siaddr: '0.0.0.0', ciaddr: '0.0.0.0' });
    expect(p.flags & 0x8000).toBe(0x8000);
    expect(hasOption(p, Opt.leaseTime)).toBe(false);
    expect(latin1(getOption(p, Opt.message)!)).toBe('address not on this network');
    expect(getOption(p, 82)).toEqual(getOption(relayed, 82));
    expect(wire(buildNak(ipxeBios, server)).flags).toBe(ipxeBios.flags);
  });
});

describe('proxyDHCP replies', () => {
  it('proxy OFFER to a BIOS ROM: yiaddr 0, no lease, PXEClient, option 43 discovery control 8, file set', () => {
    const p = wire(buildProxyOffer(relayed, server, boot(relayed)));
    expect(p.yiaddr).toBe('0.0.0.0');
    expect(p.siaddr).toBe('10.1.0.2');
    expect(hasOption(p, Opt.leaseTime)).toBe(false);
    expect(hasOption(p, Opt.subnetMask)).toBe(false);
    expect(vendorClassId(p)).toBe('PXEClient');
    expect(pxeVendorOptions(p)?.discoveryControl).toBe(8);
    expect(getOption(p, Opt.clientMachineId)).toEqual(getOption(relayed, Opt.clientMachineId));
    expect(cString(p.file)).toBe('undionly.kpxe');
    expect(getOption(p, 82)).toEqual(getOption(relayed, 82));
  });

  it('proxy OFFER to UEFI PXE defaults to the port-4011 style (no option 43, sname = server)', () => {
    const p = wire(buildProxyOffer(uefiPxe, server, boot(uefiPxe)));
    expect(hasOption(p, Opt.vendorSpecific)).toBe(false);
    expect(cString(p.sname)).toBe('10.1.0.2');
    expect(getOption(p, Opt.clientMachineId)).toEqual(getOption(uefiPxe, Opt.clientMachineId));
    const direct = wire(buildProxyOffer(uefiPxe, server, boot(uefiPxe), 'direct'));
    expect(pxeVendorOptions(direct)?.discoveryControl).toBe(8);
  });

  it('proxy OFFER to iPXE: script URL, no 82 when the request had none', () => {
    const p = wire(buildProxyOffer(ipxeBios, server, boot(ipxeBios)));
    expect(bootfileName(p)).toBe('http://10.1.0.2:8080/boot.ipxe');
    expect(hasOption(p, 82)).toBe(false);
    expect(p.yiaddr).toBe('0.0.0.0');
  });

  it('port-4011 ACK carries the boot file and echoes the requested boot item', () => {
    const req = buildPacket({
      op: BOOTREQUEST,
      xid: 0x78,
      ciaddr: '10.1.0.57',
      chaddr: Uint8Array.of(0x52, 0x54, 0, 0, 0, 7),
      options: new Map([
        [Opt.messageType, Uint8Array.of(MessageType.REQUEST)],
        [Opt.vendorClassId, fromLatin1('PXEClient:Arch:00007:UNDI:003016')],
        [Opt.clientArch, Uint8Array.of(0, 7)],
        [Opt.vendorSpecific, Uint8Array.of(71, 4, 0x80, 0x00, 0x00, 0x00, 255)],
      ]),
    });
    const p = wire(buildProxyAck(req, server, boot(req)));
    expect(messageType(p)).toBe(MessageType.ACK);
    expect(p).toMatchObject({ ciaddr: '10.1.0.57', yiaddr: '0.0.0.0', siaddr: '10.1.0.2' });
    expect(cString(p.file)).toBe('snponly.efi');
    expect(pxeVendorOptions(p)?.bootItem).toEqual({ type: 0x8000, layer: 0 });
    expect(hasOption(p, Opt.leaseTime)).toBe(false);
  });
});
