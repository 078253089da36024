import { describe, expect, it } from 'vitest';
import type { Mac } from '../../../server/model/mac.js';
import { buildPacket } from '../../../server/protocol/dhcp/builder.js';
import { fromLatin1, u16 } from '../../../server/protocol/dhcp/bytes.js';
import { classify } from '../../../server/protocol/dhcp/classify.js';
import type { UefiLoader } from '../../../server/model/inventory.js';
import { decideBoot, type BootContext } from '../../../server/protocol/dhcp/decision.js';
import { MessageType, Opt } from '../../../server/protocol/dhcp/options.js';
import { BOOTREPLY, BOOTREQUEST, type DhcpPacket } from '../../../server/protocol/dhcp/packet.js';
import { fixturePacket } from '../../fixtures/dhcp/load.js';

const PINNED_MAC = '52:54:00:00:00:99' as Mac;
const ctx: BootContext = {
  serverIp: '10.0.0.2',
  httpBaseUrl: 'http://10.0.0.2:8080/',
  loaderFor: (mac) => (mac === PINNED_MAC ? { uefiLoader: 'ipxe.efi' as UefiLoader } : undefined),
};

interface Req {
  vc?: string;
  arch?: number[];
  userClass?: number[];
  ipxe175?: boolean;
  mac?: number[];
  op?: number;
  htype?: number;
}

function request(r: Req): DhcpPacket {
  const options = new Map<number, Uint8Array>([[Opt.messageType, Uint8Array.of(MessageType.DISCOVER)]]);
  if (r.vc !== undefined) options.set(Opt.vendorClassId, fromLatin1(r.vc));
  if (r.arch) options.set(Opt.clientArch, Uint8Array.from(r.arch.flatMap((a) => [...u16(a)])));
  if (r.userClass) options.set(Opt.userClass, Uint8Array.from(r.userClass));
  if (r.ipxe175) options.set(Opt.ipxeEncap, Uint8Array.of(19, 1, 1));
  return buildPacket({
    op: r.op ?? BOOTREQUEST,
    htype: r.htype,
    xid: 1,
    chaddr: Uint8Array.from(r.mac ?? [0x52, 0x54, 0, 0, 0, 1]),
    options,
  });
}

const IPXE = [105, 80, 88, 69];
const PINNED = [0x52, 0x54, 0, 0, 0, 0x99];

describe('boot decision table', () => {
  it.each<[string, Req, Record<string, unknown>]>([
    ['BIOS PXE ROM', { vc: 'PXEClient:Arch:00000:UNDI:002001', arch: [0] }, { firmware: 'bios', transport: 'tftp', file: 'undionly.kpxe', stage: 'loader', vendorClass: 'PXEClient' }],
    ['pre-RFC 4578 PXE ROM (no arch at all)', { vc: 'PXEClient' }, { firmware: 'bios', file: 'undionly.kpxe' }],
    ['x64 UEFI, default loader (unknown machines too)', { vc: 'PXEClient:Arch:00007:UNDI:003016', arch: [7] }, { firmware: 'uefi-x64', file: 'snponly.efi', transport: 'tftp' }],
    ['x64 UEFI sending arch 9', { vc: 'PXEClient:Arch:00009:UNDI:003016', arch: [9] }, { firmware: 'uefi-x64', file: 'snponly.efi' }],
    ['x64 UEFI, machine whose group says ipxe.efi', { vc: 'PXEClient:Arch:00007:UNDI:003016', arch: [7], mac: PINNED }, { file: 'ipxe.efi' }],
    ['x64 UEFI, arch only in option 60', { vc: 'PXEClient:Arch:00007:UNDI:003016' }, { firmware: 'uefi-x64', file: 'snponly.efi' }],
    ['option 93 wins over option 60', { vc: 'PXEClient:Arch:00000:UNDI:002001', arch: [7] }, { firmware: 'uefi-x64' }],
    ['first known arch of a list', { vc: 'PXEClient', arch: [2, 11] }, { firmware: 'uefi-arm64' }],
    ['arm64 UEFI', { vc: 'PXEClient:Arch:00011:UNDI:003016', arch: [0x0b] }, { firmware: 'uefi-arm64', file: 'ipxe-arm64.efi', transport: 'tftp' }],
    ['x64 UEFI HTTP boot', { vc: 'HTTPClient:Arch:00016:UNDI:003001', arch: [0x10] }, { firmware: 'uefi-x64', transport: 'http', file: 'http://10.0.0.2:8080/ipxe/snponly.efi', vendorClass: 'HTTPClient' }],
    ['x64 UEFI HTTP boot, ipxe.efi machine', { vc: 'HTTPClient:Arch:00016:UNDI:003001', arch: [0x10], mac: PINNED }, { file: 'http://10.0.0.2:8080/ipxe/ipxe.efi' }],
    ['arm64 UEFI HTTP boot', { vc: 'HTTPClient:Arch:00019:UNDI:003001', arch: [0x13] }, { firmware: 'uefi-arm64', transport: 'http', file: 'http://10.0.0.2:8080/ipxe/ipxe-arm64.efi', vendorClass: 'HTTPClient' }],
    ['iPXE (user class) gets the script, not another iPXE', { vc: 'PXEClient:Arch:00000:UNDI:002001', arch: [0], userClass: IPXE }, { stage: 'script', transport: 'http', file: 'http://10.0.0.2:8080/boot.ipxe' }],
    ['iPXE (option 175 only)', { vc: 'PXEClient:Arch:00007:UNDI:003010', arch: [7], ipxe175: true }, { stage: 'script', firmware: 'uefi-x64', file: 'http://10.0.0.2:8080/boot.ipxe' }],
    ['iPXE without option 60', { userClass: IPXE }, { stage: 'script', vendorClass: 'PXEClient' }],
    ['iPXE in RFC 3004 format', { userClass: [4, ...IPXE] }, { stage: 'script' }],
  ])('%s', (_name, req, expected) => {
    const d = decideBoot(request(req), ctx);
    expect(d).toMatchObject({ kind: 'boot', ...expected });
  });

  it.each<[string, Req, string]>([
    ['plain DHCP client', {}, 'not-netboot'],
    ['other vendor class', { vc: 'MSFT 5.0' }, 'not-netboot'],
    ['vendor class merely containing PXEClient', { vc: 'xPXEClient' }, 'not-netboot'],
    ['a reply', { vc: 'PXEClient', op: BOOTREPLY }, 'not-a-request'],
    ['not Ethernet', { vc: 'PXEClient', htype: 6 }, 'no-mac'],
    ['32-bit UEFI (no loader shipped)', { vc: 'PXEClient:Arch:00006:UNDI:003016', arch: [6] }, 'unsupported-arch'],
    ['Itanium', { vc: 'PXEClient:Arch:00002:UNDI:003016', arch: [2] }, 'unsupported-arch'],
    ['HTTPClient without any arch', { vc: 'HTTPClient' }, 'unsupported-arch'],
  ])('ignores: %s', (_name, req, reason) => {
    expect(decideBoot(request(req), ctx)).toMatchObject({ kind: 'ignore', reason });
  });

  it('on real captures: iPXE BIOS/UEFI get the script, udhcpc and dhclient are ignored, a PXE ROM gets undionly', () => {
    expect(decideBoot(fixturePacket('ipxe-bios-discover'), ctx)).toMatchObject({ kind: 'boot', stage: 'script', firmware: 'bios' });
    expect(decideBoot(fixturePacket('ipxe-uefi-discover'), ctx)).toMatchObject({ kind: 'boot', stage: 'script', firmware: 'uefi-x64' });
    expect(decideBoot(fixturePacket('udhcpc-discover'), ctx)).toMatchObject({ kind: 'ignore', reason: 'not-netboot' });
    expect(decideBoot(fixturePacket('dhclient-discover'), ctx)).toMatchObject({ kind: 'ignore', reason: 'not-netboot' });
    expect(decideBoot(fixturePacket('synthetic-relayed-discover-opt82'), ctx)).toMatchObject({ kind: 'boot', file: 'undionly.kpxe' });
  });

  it('classify reports where the architecture came from', () => {
    const c93 = classify(request({ vc: 'PXEClient', arch: [7] }));
    const c60 = classify(request({ vc: 'PXEClient:Arch:00007:UNDI:003016' }));
    const cNone = classify(request({ vc: 'PXEClient' }));
    expect(c93.kind === 'netboot' && c93.client.archSource).toBe('option93');
    expect(c60.kind === 'netboot' && c60.client.archSource).toBe('option60');
    expect(cNone.kind === 'netboot' && cNone.client.archSource).toBe('assumed');
  });
});
