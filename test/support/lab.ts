import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createProvisioningNetwork, fullDhcpConfig as networkDhcpConfig } from '../../server/lab/network.js';
import type { ObservedStore } from '../../server/store/types.js';
import type { Netns } from './netns.js';
import { startVm, type StartVmOptions, type Vm } from './qemu.js';
import { startRackseedProcess, type RackseedProcess, type RackseedProcessOptions } from './rackseed-process.js';
import { waitFor } from './wait.js';

/**
 * One test file's provisioning network (server/lab/network.ts, which the virtual lab uses too): a server namespace
 * whose bridge carries the server's address, a work directory, the rackseed process, the machines started on the
 * bridge, and one teardown for all of it.
 */
export class ProvisioningLab {
  readonly netns: Netns;
  readonly ns: string;
  readonly bridge: string;
  readonly work: string;
  readonly vms: Vm[] = [];
  private rs: RackseedProcess | undefined;
  private clients = 0;
  private stores: ObservedStore[] = [];

  constructor(
    readonly serverIp: string,
    prefixLength = 24,
  ) {
    const net = createProvisioningNetwork(serverIp, prefixLength);
    this.netns = net.netns;
    this.ns = net.ns;
    this.bridge = net.bridge;
    this.work = mkdtempSync(path.join(tmpdir(), 'rackseed-lab-'));
  }

  get server(): RackseedProcess {
    if (!this.rs) throw new Error('the lab has no server yet: call startServer()');
    return this.rs;
  }

  /** The server's data directory. */
  get dataDir(): string {
    return path.join(this.server.dir, 'data');
  }

  get baseUrl(): string {
    return `http://${this.serverIp}:8080`;
  }

  async startServer(opts: Omit<RackseedProcessOptions, 'netns' | 'ns' | 'httpAddress'>): Promise<RackseedProcess> {
    this.rs = await startRackseedProcess({ netns: this.netns, ns: this.ns, httpAddress: this.serverIp, ...opts });
    return this.rs;
  }

  /** The server's store, read from the test process; closed at teardown. */
  async openStore(): Promise<ObservedStore> {
    const store = await this.server.openStore();
    this.stores.push(store);
    return store;
  }

  /** A client host: its own namespace, joined to the bridge by a veth (`mac` sets the client end's address). */
  addClient(mac?: string): { ns: string; ifname: string } {
    const n = (this.clients++).toString(36);
    const ns = this.netns.addNamespace(`c${n}`);
    const [ifname] = this.netns.addVeth(ns, `c${n}e`, this.ns, `c${n}p`, { ...(mac ? { mac } : {}), masterB: this.bridge });
    return { ns, ifname };
  }

  /** Makes the server rescan its images (SIGHUP, as an operator would) and waits until `name` is catalogued. */
  async rescanImages(name: string): Promise<void> {
    process.kill(this.server.child.pid!, 'SIGHUP');
    await waitFor(`image ${name} in the catalog`, () => this.server.api<{ images: Array<{ name: string }> }>('/images').images.some((i) => i.name === name), 15_000, 200);
  }

  async boot(opts: Omit<StartVmOptions, 'netns' | 'ns' | 'bridge' | 'workDir'>): Promise<Vm> {
    const vm = await startVm({ netns: this.netns, ns: this.ns, bridge: this.bridge, workDir: this.work, ...opts });
    this.vms.push(vm);
    return vm;
  }

  async teardown(): Promise<void> {
    for (const vm of this.vms) if (!vm.exited) await vm.kill();
    for (const store of this.stores) await store.close();
    await this.rs?.stop();
    this.netns.cleanup();
    rmSync(this.work, { recursive: true, force: true });
  }
}

/** rackseed config for full-mode DHCP on the lab's bridge, serving one subnet (with a pool, if given). */
export function fullDhcpConfig(lab: ProvisioningLab, cidr: string, pool?: { start: string; end: string }): string {
  return networkDhcpConfig(lab, cidr, pool);
}
