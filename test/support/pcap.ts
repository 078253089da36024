export interface UdpDatagram {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly payload: Uint8Array;
}

/** Just enough of pcap (Ethernet link type, IPv4, UDP) to pull out DHCP payloads. */
export function readPcap(buf: Buffer): UdpDatagram[] {
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && buf.readUInt32BE(0) !== 0xa1b2c3d4 && buf.readUInt32BE(0) !== 0xa1b23c4d) throw new Error('not a pcap file');
  const u32 = (at: number): number => (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  if (u32(20) !== 1) throw new Error(`pcap link type ${u32(20)} is not Ethernet`);
  const out: UdpDatagram[] = [];
  for (let at = 24; at + 16 <= buf.length; ) {
    const caplen = u32(at + 8);
    const frame = buf.subarray(at + 16, at + 16 + caplen);
    at += 16 + caplen;
    let l3 = 14;
    let etherType = frame.readUInt16BE(12);
    if (etherType === 0x8100) {
      etherType = frame.readUInt16BE(16);
      l3 = 18;
    }
    if (etherType !== 0x0800 || frame[l3 + 9] !== 17) continue;
    const l4 = l3 + (frame[l3]! & 0x0f) * 4;
    const udpLen = frame.readUInt16BE(l4 + 4);
    out.push({
      srcPort: frame.readUInt16BE(l4),
      dstPort: frame.readUInt16BE(l4 + 2),
      payload: Uint8Array.from(frame.subarray(l4 + 8, l4 + udpLen)),
    });
  }
  return out;
}
