import type { ExecResult } from '../../state/types.js';
import { parseIbPorts, SYSFS_PORT_DUMP_COMMAND, type IbPort } from '../parsers/infiniband.js';
import type { CheckContext, CheckSpec, Evidence } from '../types.js';
import { commandFailed, failed, listSome, passed } from './evidence.js';

/**
 * infiniband: at least the expected number of fabric ports (see fabricPorts: on a node with InfiniBand ports, only
 * those; on an all-Ethernet RoCE node, its ports) are Active/LinkUp at exactly the expected rate. Ports of other
 * rates (a 100G Ethernet management port, a 200G BlueField) are not counted but are not failures either; ports that
 * are down are named in the reason when the count falls short.
 */

const ROLE = 'infiniband';

function describePort(p: IbPort): string {
  return `${p.device}/${p.port} ${p.state}/${p.physState}${p.rateGbps !== undefined ? ` ${p.rateGbps}G` : ''}`;
}

const isInfinibandLink = (p: IbPort): boolean => p.linkLayer === undefined || p.linkLayer === 'InfiniBand';

/**
 * The ports that form the fabric. A node with InfiniBand ports has an InfiniBand fabric: an Ethernet port on the same
 * kind of HCA (management, storage) can run at the fabric's rate but is no fabric port. A node whose ports are all
 * Ethernet runs a RoCE fabric, and those ports are it.
 */
export function fabricPorts(ports: readonly IbPort[]): { fabric: IbPort[]; other: IbPort[] } {
  if (!ports.some((p) => p.linkLayer === 'InfiniBand')) return { fabric: [...ports], other: [] };
  return { fabric: ports.filter(isInfinibandLink), other: ports.filter((p) => !isInfinibandLink(p)) };
}

export function isHealthyPort(p: IbPort, rateGbps: number): boolean {
  return p.state === 'Active' && p.physState === 'LinkUp' && p.rateGbps === rateGbps;
}

/** PURE. Output: the sysfs dump (the collection command) or ibstat text. */
export function evaluateInfiniband(output: ExecResult, ctx: CheckContext): Evidence[] {
  const exp = ctx.hardware.infiniband;
  if (!exp) return [];
  const expected = `${exp.ports} port(s) Active/LinkUp at ${exp.rateGbps} Gb/s`;
  // ibstat exits non-zero on an ibpanic (a device vanished mid-listing): the ports it did print prove nothing.
  if (output.code !== 0) return [commandFailed(ROLE, 'infiniband.ports', expected, 'reading the InfiniBand ports', output)];
  const ports = parseIbPorts(output.stdout);
  if (ports.length === 0) return [failed(ROLE, 'infiniband.ports', expected, 'no ports', 'no InfiniBand device found (/sys/class/infiniband is empty: driver not loaded or no HCA)')];
  const { fabric, other: ethernet } = fabricPorts(ports);
  const healthy = fabric.filter((p) => isHealthyPort(p, exp.rateGbps));
  const seen = `${healthy.length} of ${ports.length} port(s) Active/LinkUp at ${exp.rateGbps} Gb/s`;
  if (healthy.length >= exp.ports) return [passed(ROLE, 'infiniband.ports', expected, seen)];
  const notActive = fabric.filter((p) => p.state !== 'Active' || p.physState !== 'LinkUp');
  const wrongRate = fabric.filter((p) => p.state === 'Active' && p.physState === 'LinkUp' && p.rateGbps !== exp.rateGbps);
  const parts = [`${healthy.length} of ${exp.ports} expected port(s) are Active/LinkUp at ${exp.rateGbps} Gb/s`];
  if (notActive.length > 0) parts.push(`not up: ${listSome(notActive.map(describePort))}`);
  if (wrongRate.length > 0) parts.push(`other rate: ${listSome(wrongRate.map(describePort))}`);
  if (ethernet.length > 0) parts.push(`Ethernet, not counted: ${listSome(ethernet.map(describePort))}`);
  return [failed(ROLE, 'infiniband.ports', expected, seen, parts.join('; '))];
}

const ports: CheckSpec = { id: 'infiniband.ports', role: ROLE, command: () => SYSFS_PORT_DUMP_COMMAND, evaluate: evaluateInfiniband };

export const INFINIBAND_CHECKS: readonly CheckSpec[] = [ports];

export function infinibandStaticEvidence(ctx: CheckContext): Evidence[] {
  if (ctx.hardware.infiniband) return [];
  return [failed(ROLE, 'infiniband.expectation', 'hardware.infiniband declared for the group', 'none declared', `group "${ctx.group}" has the infiniband role but declares no hardware.infiniband {ports, rate_gbps}`)];
}
