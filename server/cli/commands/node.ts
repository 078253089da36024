import { readFileSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { NodeView } from '../../services/node-view.js';
import type { RemovalSummary, RemovalTarget } from '../../services/node-removal.js';
import type { StoredEvent } from '../../store/types.js';
import type { CliContext, GlobalOptions } from '../context.js';
import { CliExit, EXIT_FAILED, UsageError } from '../exit.js';
import { keyValues, printJson, table } from '../output.js';

function describeEvent(e: StoredEvent): string {
  const { type, ...rest } = e.event;
  const detail = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ');
  return `${new Date(e.at).toISOString()}  ${type}${detail ? `  ${detail}` : ''}`;
}

/** The image on the node's disk, and a word when its group has moved to another one since. */
function installedImageLine(n: NodeView): string | undefined {
  const i = n.installedImage;
  if (!i) return undefined;
  const moved = n.image && n.image !== i.name ? `; its group installs ${n.image} now (reimage to move it)` : '';
  return `${i.name} (sha256 ${i.sha256.slice(0, 12)}…)${moved}`;
}

export function registerNode(program: Command, ctx: (opts: GlobalOptions) => CliContext): void {
  const node = program.command('node').description('list, inspect, add and remove nodes');

  node
    .command('list')
    .description('inventory nodes with their observed state, then discovered machines')
    .action(async (_o, cmd: Command) => {
      const { client, out } = ctx(cmd.optsWithGlobals());
      const { nodes } = await client.get<{ nodes: NodeView[] }>('/nodes');
      if (out.json) return printJson(out, nodes);
      out.write(
        `${table(
          ['NAME', 'GROUP', 'MAC', 'IP', 'STATE', 'REIMAGE', 'WIPE', 'LAST SEEN'],
          nodes.map((n) => [n.name, n.group, n.macs[0], n.ip, n.reason ? `${n.state}: ${n.reason}` : n.state, n.reimageRequested ? 'yes' : undefined, n.wipeRequested, n.lastSeenAt]),
        )}\n`,
      );
    });

  node
    .command('show <name>')
    .description('one node (by name or MAC): declaration, observed state and recent events')
    .action(async (name: string, _o, cmd: Command) => {
      const { client, out } = ctx(cmd.optsWithGlobals());
      const r = await client.get<{ node: NodeView; events: StoredEvent[] }>(`/nodes/${encodeURIComponent(name)}`);
      if (out.json) return printJson(out, r);
      const n = r.node;
      const facts = Object.entries(n.facts).map(([k, v]) => `${k}=${String(v)}`).join(', ');
      out.write(
        `${keyValues([
          ['name', n.name],
          ['in inventory', n.inInventory ? 'yes' : 'no (discovered)'],
          ['group', n.group],
          ['macs', n.macs.join(', ') || undefined],
          ['ip', n.ip],
          ['rack/slot', n.rack ? `${n.rack}/${n.slot ?? '-'}` : undefined],
          ['image', n.image],
          ['installed image', installedImageLine(n)],
          ['roles', n.roles.join(', ') || undefined],
          ['bmc', n.bmc ? `${n.bmc.kind} ${n.bmc.address}` : undefined],
          ['state', n.state],
          ['reason', n.reason],
          ['reimage requested', n.reimageRequested ? 'yes' : 'no'],
          ['wipe requested', n.wipeRequested !== undefined ? `yes (${n.wipeRequested})` : undefined],
          ['last seen', n.lastSeenAt],
          ['facts', facts || undefined],
        ])}\n\nevents:\n${r.events.map((e) => `  ${describeEvent(e)}`).join('\n') || '  (none)'}\n`,
      );
    });

  node
    .command('add <name>')
    .description('add a node to the inventory file (comments in the file are kept)')
    .requiredOption('--mac <mac...>', 'one or more MAC addresses, any usual spelling')
    .option('--ip <address>', 'reserved IPv4 address')
    .option('--group <group>', 'group (default: chosen by label selection)')
    .option('--rack <rack>', 'rack name')
    .option('--slot <n>', 'slot in the rack', (v) => {
      if (!/^\d+$/.test(v)) throw new InvalidArgumentError('a slot is a whole number');
      return Number(v);
    })
    .option('--bmc <address>', 'BMC address')
    .option('--bmc-kind <kind>', 'ipmi or redfish', 'ipmi')
    .addOption(new Option('--bmc-boot-mode <mode>', 'the firmware mode BMC network-boot overrides ask for (default: the one its last netboot showed)').choices(['uefi', 'legacy']))
    .action(async (name: string, o: { mac: string[]; ip?: string; group?: string; rack?: string; slot?: number; bmc?: string; bmcKind: string; bmcBootMode?: string }, cmd: Command) => {
      const { client, out } = ctx(cmd.optsWithGlobals());
      // --bmc-kind has a default, so only an explicit value (or a boot mode) without an address is a mistake.
      if (!o.bmc && (o.bmcBootMode !== undefined || cmd.getOptionValueSource('bmcKind') === 'cli')) throw new UsageError('--bmc-kind and --bmc-boot-mode describe a BMC: give its address with --bmc');
      const body = {
        name,
        macs: o.mac,
        ...(o.ip ? { ip: o.ip } : {}),
        ...(o.group ? { group: o.group } : {}),
        ...(o.rack ? { rack: o.rack } : {}),
        ...(o.slot !== undefined ? { slot: o.slot } : {}),
        ...(o.bmc ? { bmc: { address: o.bmc, kind: o.bmcKind, ...(o.bmcBootMode ? { boot_mode: o.bmcBootMode } : {}) } } : {}),
      };
      const r = await client.post<{ node: NodeView }>('/nodes', body);
      if (out.json) return printJson(out, r.node);
      out.write(`added ${r.node.name} (group ${r.node.group ?? '-'}, ${r.node.macs.join(', ')})\n`);
    });

  node
    .command('import <csv>')
    .description('add or update nodes from a CSV file (header: name,mac[,ip,bmc,rack,slot,group])')
    .action(async (file: string, _o, cmd: Command) => {
      const { client, out } = ctx(cmd.optsWithGlobals());
      const csv = readFileSync(file, 'utf8');
      const r = await client.post<{ added: string[]; updated: string[]; unchanged?: string[] }>(`/nodes/import?name=${encodeURIComponent(path.basename(file))}`, csv, 'text/csv');
      if (out.json) return printJson(out, r);
      out.write(`imported ${file}: ${r.added.length} added, ${r.updated.length} updated, ${r.unchanged?.length ?? 0} unchanged\n`);
    });

  node
    .command('remove <names...>')
    .description('decommission nodes: remove their inventory entries and forget their host keys and leases (a dry run without --yes)')
    .option('--yes', 'really do it (without it: print what would be removed, change nothing)')
    .option('--force', 'also remove nodes installing now, or running an apply, readiness check or convergence (refused without it)')
    .addHelpText(
      'after',
      '\nNames: node names or hostlists (gpu[01-04]). A member of a range entry cannot be removed alone (narrow the range by hand);\n' +
        'naming every member removes the range. Each machine is then a discovered one: if it netboots again it is never installed.',
    )
    .action(async (names: string[], o: { yes?: boolean; force?: boolean }, cmd: Command) => {
      const { client, out } = ctx(cmd.optsWithGlobals());
      const body = { names, ...(o.force ? { force: true } : {}) };
      if (!o.yes) {
        const dry = await client.post<{ dryRun: true; nodes: RemovalTarget[] }>('/nodes/remove', { ...body, confirm: false });
        if (out.json) return printJson(out, dry);
        const rows = dry.nodes.map((n) => [n.node, n.state, n.inInventory ? n.entry : 'not in the inventory (its observed state only)', n.macs.join(', ') || undefined, n.refused]);
        out.write(`${table(['NODE', 'STATE', 'DECLARED AT', 'MACS', 'REFUSED'], rows)}\n`);
        const refused = dry.nodes.filter((n) => n.refused).length;
        out.write(`would remove ${dry.nodes.length - refused} node${dry.nodes.length - refused === 1 ? '' : 's'}${refused ? ` (${refused} refused: nothing is removed while any is)` : ''}; nothing changed; re-run with --yes\n`);
        return;
      }
      const r = await client.post<{ dryRun: false } & RemovalSummary>('/nodes/remove', { ...body, confirm: true });
      const failed = r.removed.filter((n) => n.errors.length > 0).length > 0 || r.inventoryProblem !== undefined;
      if (out.json) {
        printJson(out, r);
        if (failed) throw new CliExit(EXIT_FAILED);
        return;
      }
      const rows = r.removed.map((n) => [
        n.node,
        n.keptAs ? `discovered machine ${n.keptAs}` : undefined,
        n.releasedLeases.map((l) => l.ip).join(', ') || undefined,
        n.hostKeyForgotten ? 'deleted' : undefined,
        n.errors.join('; ') || undefined,
      ]);
      out.write(`${table(['NODE', 'KEPT AS', 'LEASES RELEASED', 'HOST KEY', 'PROBLEM'], rows)}\n`);
      out.write(`removed ${r.removed.length} node${r.removed.length === 1 ? '' : 's'} from the inventory\n`);
      if (r.inventoryProblem) out.write(`but: ${r.inventoryProblem}\n`);
      if (failed) throw new CliExit(EXIT_FAILED);
    });
}
