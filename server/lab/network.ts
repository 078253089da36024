import { Netns, type NetnsOptions } from './netns.js';

/**
 * A private provisioning network: one namespace holding a bridge that carries the server's address. Machines join
 * the bridge (QEMU on a tap, or a namespace on a veth); the server and QEMU run inside the namespace. Nothing of it
 * exists in the host's namespace, so deleting the namespace removes the bridge, the taps and the veths with it.
 */
export interface ProvisioningNetwork {
  readonly netns: Netns;
  /** The namespace the server, the bridge and the taps live in. */
  readonly ns: string;
  readonly bridge: string;
  readonly serverIp: string;
}

export function createProvisioningNetwork(serverIp: string, prefixLength = 24, opts: { prefix?: string } & NetnsOptions = {}): ProvisioningNetwork {
  const netns = new Netns(opts.prefix, opts);
  try {
    const ns = netns.addNamespace('sv');
    const bridge = netns.addBridge(ns, 'br');
    netns.addAddress(ns, bridge, `${serverIp}/${prefixLength}`);
    return { netns, ns, bridge, serverIp };
  } catch (err) {
    netns.cleanup();
    throw err;
  }
}

/** rackseed's dhcp: section for full-mode DHCP on the network's bridge, serving one subnet (with a pool, if given). */
export function fullDhcpConfig(net: Pick<ProvisioningNetwork, 'bridge' | 'serverIp'>, cidr: string, pool?: { start: string; end: string }): string {
  return `dhcp:
  mode: full
  interface: ${net.bridge}
  server_ip: ${net.serverIp}
  subnets:
    - cidr: ${cidr}
${pool ? `      pool: { start: ${pool.start}, end: ${pool.end} }\n` : ''}      routers: [${net.serverIp}]
`;
}
