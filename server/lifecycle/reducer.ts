import { isInstallFailure, isPostInstallStage, POST_INSTALL_STATES, WIPE_STAGE, type InstalledImage, type LifecycleEvent, type LifecycleState, type LifecycleStatus } from '../model/lifecycle.js';

/** Outcome of applying one event: the next status, or why the event does not apply to the current one. */
export type Transition =
  | { ok: true; status: LifecycleStatus; changed: boolean }
  | { ok: false; error: string };

/** Which states each state-changing event may be applied in. undefined = no status yet (a new record). */
const ALLOWED_FROM: Record<
  'discovered' | 'assigned' | 'provision_started' | 'installed' | 'configure_started' | 'ready',
  ReadonlyArray<LifecycleState | undefined>
> = {
  // A discovered machine that boots again only refreshes its facts; a known node is never demoted by it.
  discovered: [undefined, 'discovered'],
  assigned: [undefined, 'discovered', 'assigned', 'failed'],
  // Provisioning starts from assigned, or from any later state when a reimage was requested (checked below).
  provision_started: ['assigned', 'provisioning', 'failed'],
  // Again in installed: the installer retries a report whose response was lost, and the retry must not fail.
  installed: ['provisioning', 'installed'],
  configure_started: ['installed', 'configuring', 'ready', 'failed'],
  ready: ['configuring'],
};

const sameImage = (a: InstalledImage | undefined, b: InstalledImage | undefined): boolean => a?.name === b?.name && a?.sha256 === b?.sha256;

function reject(current: LifecycleStatus | undefined, event: LifecycleEvent, why?: string): Transition {
  const from = current ? current.state : 'nothing';
  return { ok: false, error: why ?? `event "${event.type}" is not allowed in state "${from}"` };
}

function fresh(state: LifecycleState): LifecycleStatus {
  return { state, reimageRequested: false, facts: {} };
}

/** Drops the keys that only make sense in the state being left. */
function enter(current: LifecycleStatus, state: LifecycleState): LifecycleStatus {
  const { reason: _reason, stage: _stage, ...rest } = current;
  return { ...rest, state };
}

/**
 * The lifecycle reducer: pure, total over (status, event), never throws. The store applies it inside the same
 * transaction that appends the event, so the status and the event log cannot disagree.
 */
export function reduceLifecycle(current: LifecycleStatus | undefined, event: LifecycleEvent): Transition {
  switch (event.type) {
    case 'discovered': {
      if (!ALLOWED_FROM.discovered.includes(current?.state)) return reject(current, event);
      const base = current ?? fresh('discovered');
      return { ok: true, status: { ...base, facts: { ...base.facts, ...event.facts } }, changed: !current };
    }
    case 'assigned': {
      if (!ALLOWED_FROM.assigned.includes(current?.state)) return reject(current, event);
      const base = current ?? fresh('assigned');
      return { ok: true, status: enter(base, 'assigned'), changed: base.state !== 'assigned' || !current };
    }
    case 'provision_started': {
      const allowed = ALLOWED_FROM.provision_started.includes(current?.state) || current?.reimageRequested === true;
      if (!current || !allowed) {
        return reject(current, event, current && current.state !== 'discovered'
          ? `node is "${current.state}" and no reimage was requested; provisioning again needs a reimage request`
          : undefined);
      }
      // The disk is being overwritten: what it held is no longer known until the install reports what it wrote.
      const { reimageFromGroup: _from, installedImage: _image, ...rest } = enter(current, 'provisioning');
      return { ok: true, status: { ...rest, reimageRequested: false }, changed: true };
    }
    case 'stage': {
      if (current?.state !== 'provisioning' && current?.state !== 'wiping') return reject(current, event);
      return { ok: true, status: { ...current, stage: event.stage }, changed: current.stage !== event.stage };
    }
    case 'installed':
    case 'configure_started':
    case 'ready': {
      if (!current || !ALLOWED_FROM[event.type].includes(current.state)) return reject(current, event);
      // Configuring a node whose install failed would erase that failure, and its next boot would start the disk.
      if (event.type === 'configure_started' && isInstallFailure(current)) {
        return reject(current, event, `the install failed (stage ${current.stage}): nothing to configure until the node is reimaged`);
      }
      const target: LifecycleState =
        event.type === 'installed' ? 'installed' : event.type === 'ready' ? 'ready' : 'configuring';
      const status = enter(current, target);
      if (event.type === 'installed') {
        if (event.image) status.installedImage = { name: event.image.name, sha256: event.image.sha256 };
        else delete status.installedImage;
      }
      return { ok: true, status, changed: current.state !== target || !sameImage(current.installedImage, status.installedImage) };
    }
    case 'failed': {
      if (!current) return reject(current, event);
      // The server's work on an installed OS (states, readiness) that ends after a reimage began is stale: the
      // installer owns the node, and a late failure would make it refuse the installer's reports.
      if (isPostInstallStage(event.stage) && !POST_INSTALL_STATES.has(current.state)) {
        return reject(current, event, `a ${event.stage} failure does not apply to a node that is ${current.state}`);
      }
      // A late one on a node whose reinstall failed would replace the install failure, and the next boot would start
      // the half-written disk (and convergence configure it) instead of asking for a reimage.
      if (isPostInstallStage(event.stage) && isInstallFailure(current)) {
        return reject(current, event, `the install failed (stage ${current.stage}): a ${event.stage} failure from before the reinstall does not replace it`);
      }
      // Likewise an installer's failure (a stage the installer names) after its install was reported complete: a
      // late or retried report must not turn a good disk into an install failure that is refused every boot.
      if (event.stage !== undefined && !isPostInstallStage(event.stage) && current.state !== 'provisioning' && current.state !== 'wiping' && current.state !== 'failed') {
        return reject(current, event, `an install failure (stage ${event.stage}) does not apply to a node that is ${current.state}`);
      }
      const status: LifecycleStatus = { ...enter(current, 'failed'), reason: event.reason };
      if (event.stage !== undefined) status.stage = event.stage;
      if (current.state === 'wiping') {
        // Whatever step of the wipe it was (no lease, no plan, a write error), the node failed its wipe: the disks are
        // in an unknown state, and the boot decision must say so. Not started again at every boot (a failing disk
        // would loop): wipe again to retry.
        status.stage = WIPE_STAGE;
        if (event.stage !== undefined && event.stage !== WIPE_STAGE) status.reason = `${event.stage}: ${event.reason}`;
        delete status.wipeRequested;
      }
      return { ok: true, status, changed: true };
    }
    case 'reimage_requested': {
      // An unassigned machine has nothing to be reimaged into: assign it first.
      if (!current || current.state === 'discovered') return reject(current, event);
      const status: LifecycleStatus = { ...current, reimageRequested: true };
      // A second request while one is pending keeps the first group: that is the one the installed OS runs.
      const fromGroup = current.reimageRequested ? (current.reimageFromGroup ?? event.fromGroup) : event.fromGroup;
      if (fromGroup !== undefined) status.reimageFromGroup = fromGroup;
      else delete status.reimageFromGroup;
      return { ok: true, status, changed: !current.reimageRequested || status.reimageFromGroup !== current.reimageFromGroup };
    }
    case 'plan_refused': {
      if (!current) return reject(current, event);
      if (current.state !== 'provisioning' && current.state !== 'wiping') return { ok: true, status: current, changed: false };
      return { ok: true, status: { ...current, stage: 'plan-refused' }, changed: current.stage !== 'plan-refused' };
    }
    case 'removed': {
      if (!current) return reject(current, event);
      // Nothing of the old lifecycle may reach a node added later: not its state (a new machine under the name, or
      // this one under a new name, must be installed), nor its failure, pending reimage or image on disk.
      return { ok: true, status: { ...fresh('discovered'), facts: current.facts }, changed: true };
    }
    case 'wipe_requested': {
      // A machine outside the inventory gets no boot script that could wipe it.
      if (!current || current.state === 'discovered') return reject(current, event);
      return { ok: true, status: { ...current, wipeRequested: event.mode }, changed: current.wipeRequested !== event.mode };
    }
    case 'wipe_cancelled': {
      if (!current) return reject(current, event);
      if (current.state === 'wiping') return reject(current, event, 'the node is wiping its disks now: past cancelling (what is erased is gone)');
      const { wipeRequested, ...rest } = current;
      return { ok: true, status: rest, changed: wipeRequested !== undefined };
    }
    case 'wipe_started': {
      if (!current || current.wipeRequested === undefined) return reject(current, event, current ? `node is "${current.state}" and no wipe was requested` : undefined);
      // From here on the disks hold nothing to boot: the image that was on them is no longer there.
      const { installedImage: _image, ...rest } = enter(current, 'wiping');
      return { ok: true, status: rest, changed: true };
    }
    case 'wiped': {
      // Again in wiped: the installer retries a report whose response was lost.
      if (current?.state !== 'wiping' && current?.state !== 'wiped') return reject(current, event);
      const { wipeRequested, installedImage: _image, ...rest } = enter(current, 'wiped');
      // A wipe asked again in another mode while this one ran (quick, then --mode full --force) is still to be done.
      const status: LifecycleStatus = wipeRequested !== undefined && wipeRequested !== event.mode ? { ...rest, wipeRequested } : rest;
      return { ok: true, status, changed: current.state !== 'wiped' || status.wipeRequested !== current.wipeRequested };
    }
    case 'reimage_cancelled': {
      if (!current) return reject(current, event);
      const { reimageFromGroup: _from, ...rest } = current;
      return { ok: true, status: { ...rest, reimageRequested: false }, changed: current.reimageRequested };
    }
  }
}

/** Folds a sequence of events; stops at the first rejected one. */
export function foldLifecycle(
  events: readonly LifecycleEvent[],
  start?: LifecycleStatus,
): { status: LifecycleStatus | undefined; rejected?: { index: number; error: string } } {
  let status = start;
  for (const [index, event] of events.entries()) {
    const t = reduceLifecycle(status, event);
    if (!t.ok) return { status, rejected: { index, error: t.error } };
    status = t.status;
  }
  return { status };
}
