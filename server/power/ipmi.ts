import { spawn } from 'node:child_process';
import { ipmitoolArgs, ipmitoolError, parseIpmiPowerStatus, pxeBootdevCommand } from './ipmi-command.js';
import { BmcError, type BmcTarget, type PowerAction, type PowerDriver, type PowerState } from './types.js';

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

async function powerStatus(target: BmcTarget, signal: AbortSignal): Promise<PowerState> {
  return parseIpmiPowerStatus(await ipmitool(target, ['chassis', 'power', 'status'], signal));
}

/** IPMI over LAN (RMCP+, "lanplus") through ipmitool. */
export const ipmiDriver: PowerDriver = async (target: BmcTarget, action: PowerAction, signal: AbortSignal) => {
  switch (action) {
    case 'status':
      return { state: await powerStatus(target, signal) };
    case 'on':
      await ipmitool(target, ['chassis', 'power', 'on'], signal);
      return { state: 'on' };
    case 'off':
      await ipmitool(target, ['chassis', 'power', 'off'], signal);
      return { state: 'off' };
    case 'cycle':
      await ipmitool(target, ['chassis', 'power', 'cycle'], signal);
      return { state: 'on' };
    case 'pxe': {
      await ipmitool(target, pxeBootdevCommand(target.bootMode), signal);
      // A cycle does nothing to a machine that is off (IPMI spec), so switch those on instead.
      const state = await powerStatus(target, signal);
      await ipmitool(target, ['chassis', 'power', state === 'off' ? 'on' : 'cycle'], signal);
      return { state: 'on' };
    }
  }
};
