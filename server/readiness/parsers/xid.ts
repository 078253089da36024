/** Pure parser for NVIDIA Xid events in a kernel log (`dmesg` lines such as `NVRM: Xid (PCI:0000:9b:00): 119, ...`). */

export interface XidEvent {
  /** The PCI address as the driver prints it ('0000:9b:00'). */
  pci: string;
  xid: number;
  /** The rest of the line after the number. */
  message: string;
}

export function parseXidEvents(kernelLog: string): XidEvent[] {
  const out: XidEvent[] = [];
  for (const m of kernelLog.matchAll(/NVRM: Xid \(PCI:([0-9a-fA-F:.]+)\): (\d+),?\s*(.*)$/gm)) {
    out.push({ pci: m[1]!, xid: Number(m[2]), message: m[3]!.trim() });
  }
  return out;
}

/**
 * Xids NVIDIA documents as usually caused by the application (a bad kernel, an illegal address), not by the GPU,
 * driver or board. They say nothing about whether the node can work, so readiness lists but does not fail them.
 */
export const APPLICATION_XIDS: ReadonlySet<number> = new Set([13, 31, 43, 45]);
