import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const IPMI_SIM = '/usr/bin/ipmi_sim';

export interface IpmiSim {
  port: number;
  username: string;
  password: string;
  /** What ipmi_sim asked its chassis-control script to do: lines like "set power 1", "set boot pxe". */
  calls(): string[];
  /** Only the changes ("set ..." lines). */
  sets(): string[];
  /** Sets the simulated chassis power as the script reports it. */
  setPower(on: boolean): void;
  pid: number;
  /** What ipmi_sim printed (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

/** A free UDP port on 127.0.0.1 (bound then released; ipmi_sim binds it right after). */
async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/**
 * The chassis-control program ipmi_sim runs for power and boot-device commands (see OpenIPMI's
 * lanserv/ipmi_sim_chassiscontrol for the protocol: `<mc> get parm...` / `<mc> set parm val...`). It logs every
 * call and keeps power and boot device in files, so a test sees exactly what the BMC was told.
 */
const CHASSIS_SCRIPT = `#!/bin/sh
dir=$(dirname "$0")
echo "$*" | cut -d' ' -f2- >> "$dir/calls.log"
shift
op=$1; shift
case $op in
  get)
    for p in "$@"; do
      case $p in
        power) echo "power:$(cat "$dir/power" 2>/dev/null || echo 0)";;
        boot) echo "boot:$(cat "$dir/boot" 2>/dev/null || echo default)";;
        *) echo "Invalid parameter: $p"; exit 1;;
      esac
    done;;
  set)
    while [ $# -gt 0 ]; do
      p=$1; v=$2; shift 2
      case $p in
        power) echo "$v" > "$dir/power";;
        boot) echo "$v" > "$dir/boot";;
        reset) ;;
        identify) shift;;
        *) echo "Invalid parameter: $p"; exit 1;;
      esac
    done;;
  *) exit 1;;
esac
`;

/**
 * Starts ipmi_sim (Debian's openipmi) as a BMC with one LAN channel on 127.0.0.1:<free port>, one admin user and the
 * logging chassis-control script above. Stopped by its PID.
 */
export async function startIpmiSim(opts: { username?: string; password?: string } = {}): Promise<IpmiSim> {
  const username = opts.username ?? 'admin';
  const password = opts.password ?? 'sim-secret-42';
  const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-ipmi-sim-'));
  const stateDir = path.join(dir, 'state');
  mkdirSync(stateDir);
  const script = path.join(dir, 'chassis-control');
  writeFileSync(script, CHASSIS_SCRIPT);
  chmodSync(script, 0o755);
  const port = await freeUdpPort();
  writeFileSync(
    path.join(dir, 'lan.conf'),
    `name "rackseedtest"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 ${port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "${script} 0x20"
  user 2 true "${username}" "${password}" admin 10 none md2 md5 straight
`,
  );
  writeFileSync(path.join(dir, 'sim.emu'), 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable 0x20\n');
  const child: ChildProcess = spawn(IPMI_SIM, ['-c', path.join(dir, 'lan.conf'), '-f', path.join(dir, 'sim.emu'), '-s', stateDir, '-n'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.pid === undefined) throw new Error(`cannot start ${IPMI_SIM}`);
  const pid = child.pid;
  const log = path.join(dir, 'calls.log');
  const calls = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);
  return {
    port,
    username,
    password,
    pid,
    output: () => output,
    calls,
    sets: () => calls().filter((l) => l.startsWith('set ')),
    setPower: (on) => writeFileSync(path.join(dir, 'power'), on ? '1\n' : '0\n'),
    async stop() {
      if (child.exitCode === null) process.kill(pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
