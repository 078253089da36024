import { readFileSync } from 'node:fs';

/** A process as it was when recorded: its PID and its start time, which tells it from a later process reusing the PID. */
export interface ProcessIdentity {
  pid: number;
  /** Start time in clock ticks since boot (/proc/PID/stat field 22). */
  startTicks: number;
}

/** The start time of a live process, or undefined when there is no such process. */
export function processStartTicks(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[19]);
  return Number.isFinite(ticks) ? ticks : undefined;
}

/** Whether the process recorded is still the one running under its PID (not gone, not a reused number, not a zombie). */
export function stillRunning(p: ProcessIdentity): boolean {
  if (processStartTicks(p.pid) !== p.startTicks) return false;
  try {
    const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** This process, as another one will see it in /proc. */
export function thisProcess(): ProcessIdentity {
  const startTicks = processStartTicks(process.pid);
  if (startTicks === undefined) throw new Error('/proc/self/stat is not readable: cannot record this process');
  return { pid: process.pid, startTicks };
}
