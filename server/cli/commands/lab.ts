import path from 'node:path';
import type { Command } from 'commander';
import { labDown } from '../../lab/down.js';
import { labUp, type RunningLab } from '../../lab/lab.js';
import { LAB_SERVER_IP } from '../../lab/plan.js';
import { RackseedError } from '../../model/errors.js';
import { UsageError } from '../exit.js';
import { keyValues } from '../output.js';

const DEFAULT_DIR = './rackseed-lab';

function elapsed(since: number): string {
  const s = Math.floor((Date.now() - since) / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

function banner(lab: RunningLab, dir: string): string {
  const head = lab.machines[0]!;
  const ssh = `ip netns exec ${lab.network.ns} ssh -i ${path.join(lab.dir, 'data/ssh/id_ed25519')} -o UserKnownHostsFile=${path.join(lab.dir, 'data/ssh/known_hosts')} root@${head.ip}`;
  return `
${keyValues([
  ['dashboard', `${lab.url}/ui/  (log in with the admin token)`],
  ['admin token', lab.token],
  ['progress', `RACKSEED_URL=${lab.url} RACKSEED_TOKEN=${lab.token} npx rackseed status`],
  ['machines', lab.machines.map((m) => `${m.name} ${m.ip} (${m.group === 'head' ? 'Slurm controller' : 'Slurm compute'})`).join(', ')],
  ['ssh', ssh],
  ['server log', lab.server.logFile],
  ['stop', `Ctrl-C here, or: rackseed lab down --dir ${dir}`],
])}

`;
}

/** `rackseed lab up|down`: the virtual lab (server/lab/lab.ts), run as root on the host that builds it. */
export function registerLab(program: Command, write: (s: string) => void): void {
  const lab = program.command('lab').description('a virtual lab on this machine: QEMU nodes PXE boot, install and become a Slurm cluster (root)');
  lab
    .command('up')
    .description(`create the lab network, start rackseed in it and boot the machines; stays in the foreground until Ctrl-C`)
    .option('--dir <dir>', 'the lab directory (config, data, disks, logs, state)', DEFAULT_DIR)
    .option('--nodes <n>', 'machines: one Slurm controller, the rest Slurm compute', '3')
    .option('--uefi', 'boot the machines with UEFI (OVMF) instead of BIOS')
    .option('--port <port>', 'host loopback port for the dashboard and API (0: any free port)', '8480')
    .action(async (o: { dir: string; nodes: string; uefi?: boolean; port: string }) => {
      const nodes = Number(o.nodes);
      const port = Number(o.port);
      if (!Number.isInteger(nodes)) throw new UsageError(`--nodes: expected a number, got "${o.nodes}"`);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: expected a port number, got "${o.port}"`);
      const started = Date.now();
      const say = (line: string): void => write(`[${elapsed(started)}] ${line}\n`);

      // While the lab is being made, a signal ends this process; the namespace harness's exit hook removes what was
      // made so far, and the state file lets the next `lab up` or `lab down` finish the job.
      const abort = (): void => process.exit(130);
      process.once('SIGINT', abort);
      process.once('SIGTERM', abort);
      let running: RunningLab;
      try {
        running = await labUp({ dir: o.dir, nodes, firmware: o.uefi ? 'uefi' : 'bios', port, say });
      } finally {
        process.removeListener('SIGINT', abort);
        process.removeListener('SIGTERM', abort);
      }
      let stopping = false;
      const stop = new Promise<string>((resolve) => {
        process.once('SIGINT', () => resolve('SIGINT'));
        process.once('SIGTERM', () => resolve('SIGTERM'));
      });
      write(banner(running, o.dir));
      say(`lab server on the lab network at http://${LAB_SERVER_IP}:8080, relayed to ${running.url}`);
      void running.waitUntilReady(24 * 3600_000).then(
        () => say(`all ${running.machines.length} machines are ready: a Slurm cluster (try: ssh to ${running.machines[0]!.name}, then sinfo)`),
        (err: Error) => {
          // Taking the lab down stops its machines, which the wait sees as a failure: not worth a line then.
          if (!stopping) say(`the lab stopped making progress: ${err.message}`);
        },
      );
      const signal = await stop;
      stopping = true;
      say(`${signal}: taking the lab down`);
      await running.down();
      say('the lab is down (logs and config are kept in the lab directory)');
    });

  lab
    .command('down')
    .description('stop what `rackseed lab up` started in this lab directory and remove its namespaces (also after a crash)')
    .option('--dir <dir>', 'the lab directory', DEFAULT_DIR)
    .action(async (o: { dir: string }) => {
      if (process.getuid?.() !== 0) throw new RackseedError('LAB_FAILED', 'rackseed lab down needs root: it removes network namespaces (try: sudo npx rackseed lab down)');
      const r = await labDown(o.dir, (line) => write(`${line}\n`));
      if (!r.found) {
        write(`no lab state in ${o.dir}: nothing to take down\n`);
        return;
      }
      write(`lab in ${o.dir} is down: ${r.stopped.length} process(es) stopped here, ${r.namespacesRemoved.length} namespace(s) removed here\n`);
    });
}
