/** Pure parser for NVIDIA Xid events in a kernel log (`dmesg` lines such as `NVRM: Xid (PCI:0000:9b:00): 119, ...`). */

export interface XidEvent {
  /** The PCI address as the driver prints it ('0000:9b:00'). */
  pci: string;
  xid: number;
  /** The rest of the line after the number. */
  message: string;
}

/**
 * The shapes drivers print: `Xid (PCI:0000:9b:00): 119, ...`; with MIG, the instance after the address
 * (`Xid (PCI:0000:3b:00 GPU-I:01 GPU-CI:02): 79, ...`); older drivers without the `PCI:` prefix (`Xid (0000:03:00): 79`).
 */
const XID_LINE = /NVRM: Xid \((?:PCI:)?([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-9a-fA-F])?)(?: [^)]*)?\): (\d+),?\s*(.*)$/;

export interface XidLog {
  events: XidEvent[];
  /** `NVRM: Xid` lines in no shape above: something happened that readiness cannot classify. */
  unrecognised: string[];
}

export function parseXidLog(kernelLog: string): XidLog {
  const events: XidEvent[] = [];
  const unrecognised: string[] = [];
  for (const line of kernelLog.split('\n')) {
    if (!line.includes('NVRM: Xid')) continue;
    const m = XID_LINE.exec(line);
    if (m) events.push({ pci: m[1]!, xid: Number(m[2]), message: m[3]!.trim() });
    else unrecognised.push(line.trim());
  }
  return { events, unrecognised };
}

/**
 * Xids NVIDIA documents as usually caused by the application (a bad kernel, an illegal address), not by the GPU,
 * driver or board. They say nothing about whether the node can work, so readiness lists but does not fail them.
 */
export const APPLICATION_XIDS: ReadonlySet<number> = new Set([13, 31, 43, 45]);
