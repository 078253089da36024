/**
 * PURE: what a lab consists of (its addresses, machines and roles) and the rackseed.yaml and inventory.yaml that
 * describe it to the lab's server. No I/O here: lab.ts creates what this describes.
 */

export const LAB_SUBNET = '10.213.0.0/24';
export const LAB_SERVER_IP = '10.213.0.1';
/** The port the lab server's HTTP listens on inside the lab namespace. */
export const LAB_SERVER_PORT = 8080;
export const LAB_POOL = { start: '10.213.0.100', end: '10.213.0.199' };

export interface LabMachine {
  name: string;
  mac: string;
  ip: string;
  group: 'head' | 'compute';
}

/** The first machine is the Slurm controller, the others Slurm compute nodes: fixed MACs and addresses. */
export function labMachines(count: number): LabMachine[] {
  if (!Number.isInteger(count) || count < 2 || count > 9) throw new Error(`a lab has 2 to 9 machines (one controller, the rest compute), not ${count}`);
  return Array.from({ length: count }, (_, i) =>
    i === 0
      ? { name: 'lab-head', mac: '52:54:00:1a:b0:10', ip: '10.213.0.10', group: 'head' as const }
      : { name: `lab-c${String(i).padStart(2, '0')}`, mac: `52:54:00:1a:b0:${String(10 + i)}`, ip: `10.213.0.${10 + i}`, group: 'compute' as const },
  );
}

export function labInventory(machines: readonly LabMachine[], image: string): string {
  // installed_boot: kernel: the installed system boots through the server's kernel script, so the machines never
  // need a boot loader on their disks (and BIOS and UEFI machines boot the same way).
  const group = (name: string, description: string, roles: string[]): string => `  ${name}:
    description: ${description}
    image: ${image}
    roles: [${roles.join(', ')}]
    kernel_args: [console=ttyS0, panic=-1]
    installed_boot: kernel
    disk:
      device: /dev/vda
      partitions:
        - { mount: /, size: rest, fs: ext4 }
`;
  return `# The virtual lab's inventory, written by \`rackseed lab up\`: one Slurm controller, the rest Slurm compute.
cluster:
  name: lab
groups:
${group('head', 'Slurm controller', ['base', 'slurm-controller'])}${group('compute', 'Slurm compute', ['base', 'slurm-compute'])}nodes:
${machines.map((m) => `  - { name: ${m.name}, mac: "${m.mac}", ip: ${m.ip}, group: ${m.group} }\n`).join('')}`;
}

export function labConfig(bridge: string): string {
  return `# The virtual lab's server, written by \`rackseed lab up\`. It runs inside the lab's network namespace.
server:
  name: lab
data_dir: ./data
inventory: ./inventory.yaml
http:
  listen: ${LAB_SERVER_IP}
  port: ${LAB_SERVER_PORT}
dhcp:
  mode: full
  interface: ${bridge}
  server_ip: ${LAB_SERVER_IP}
  subnets:
    - cidr: ${LAB_SUBNET}
      pool: { start: ${LAB_POOL.start}, end: ${LAB_POOL.end} }
      routers: [${LAB_SERVER_IP}]
# Emulated machines are slow: look for installed ones often, and keep retrying while they boot.
convergence:
  probe_interval_seconds: 5
  max_attempts: 30
  backoff_base_seconds: 5
  backoff_max_seconds: 20
log:
  level: info
`;
}
