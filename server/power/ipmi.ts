import { spawn } from 'node:child_process';
import { ipmitoolArgs, ipmitoolError, parseIpmiPowerStatus, pxeBootdevCommand } from './ipmi-command.js';
import { BmcError, type BmcTarget, type PowerAction, type PowerDriver, type PowerState, type StepReporter } from './types.js';

const IPMITOOL = 'ipmitool';

/** Runs one ipmitool command; on abort the child is killed by its PID, so a hung BMC leaves no process behind. */
function ipmitool(target: BmcTarget, command: readonly string[], signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new BmcError('aborted before ipmitool started'));
    const child = spawn(IPMITOOL, ipmitoolArgs(target, command), {
      env: { ...process.env, IPMI_PASSWORD: target.credential.password },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const onAbort = () => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    };
    signal.addEventListener('abort', onAbort, { once: true });
    child.once('error', (e) => {
      signal.removeEventListener('abort', onAbort);
      reject(new BmcError(`cannot run ${IPMITOOL}: ${e.message}`, { cause: e }));
    });
    child.once('close', (code) => {
      signal.removeEventListener('abort', onAbort);
      if (signal.aborted) reject(new BmcError('ipmitool was stopped: no answer in time'));
      else if (code === 0) resolve(stdout);
      else reject(new BmcError(ipmitoolError(stderr, code)));
    });
  });
}

/** IPMI over LAN (RMCP+, "lanplus") through ipmitool. */
export const ipmiDriver: PowerDriver = async (target: BmcTarget, action: PowerAction, signal: AbortSignal, step: StepReporter = () => undefined) => {
  const run = (command: readonly string[]) => {
    step(command.join(' '));
    return ipmitool(target, command, signal);
  };
  const powerStatus = async (): Promise<PowerState> => parseIpmiPowerStatus(await run(['chassis', 'power', 'status']));
  // A cycle does nothing to a machine that is off (the IPMI spec suggests it be refused), so those are switched on:
  // an operator restarting machines wants them all running afterwards, and the answer must say what they are.
  const restartOrSwitchOn = async () => {
    const state = await powerStatus();
    await run(['chassis', 'power', state === 'off' ? 'on' : 'cycle']);
    return { state: 'on' as const };
  };
  switch (action) {
    case 'status':
      return { state: await powerStatus() };
    case 'on':
      await run(['chassis', 'power', 'on']);
      return { state: 'on' };
    case 'off':
      await run(['chassis', 'power', 'off']);
      return { state: 'off' };
    case 'cycle':
      return restartOrSwitchOn();
    case 'pxe':
      await run(pxeBootdevCommand(target.bootMode));
      return restartOrSwitchOn();
  }
};
