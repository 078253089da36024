import { describe, expect, it } from 'vitest';

import { foldLifecycle, reduceLifecycle } from '../../../server/lifecycle/reducer.js';
import { LIFECYCLE_STATES, type Facts, type LifecycleEvent, type LifecycleStatus } from '../../../server/model/lifecycle.js';

const discovered = (facts: Facts = {}): LifecycleEvent => ({
  type: 'discovered',
  mac: '52:54:00:12:34:56',
  facts,
});
const assigned: LifecycleEvent = { type: 'assigned', group: 'compute' };
const provision: LifecycleEvent = { type: 'provision_started' };
const stage = (s: string): LifecycleEvent => ({ type: 'stage', stage: s });
const installed: LifecycleEvent = { type: 'installed' };
const IMAGE_A = { name: 'debian12', sha256: 'a'.repeat(64) };
const IMAGE_B = { name: 'debian12-cuda', sha256: 'b'.repeat(64) };
const installedWith = (image: { name: string; sha256: string }): LifecycleEvent => ({ type: 'installed', image });
const configure: LifecycleEvent = { type: 'configure_started' };
const ready: LifecycleEvent = { type: 'ready' };
const failed = (reason: string, at?: string): LifecycleEvent => (at === undefined ? { type: 'failed', reason } : { type: 'failed', reason, stage: at });
const reimage = (fromGroup?: string): LifecycleEvent => ({ type: 'reimage_requested', ...(fromGroup !== undefined ? { fromGroup } : {}) });
const cancel: LifecycleEvent = { type: 'reimage_cancelled' };
const removed: LifecycleEvent = { type: 'removed', entry: 'inventory.yaml:12 nodes[3] (gpu05)' };
const wipe = (mode: 'quick' | 'full' = 'quick'): LifecycleEvent => ({ type: 'wipe_requested', mode });
const wipeCancel: LifecycleEvent = { type: 'wipe_cancelled' };
const wipeStart: LifecycleEvent = { type: 'wipe_started' };
const wiped: LifecycleEvent = { type: 'wiped', mode: 'quick', disks: [{ name: 'sda', bytes: 480103981056 }] };

const TO_READY: LifecycleEvent[] = [discovered({ product: 'R650' }), assigned, provision, stage('download'), installed, configure, ready];

type Case =
  | { name: string; events: LifecycleEvent[]; status: Partial<LifecycleStatus>; absent?: (keyof LifecycleStatus)[] }
  | { name: string; events: LifecycleEvent[]; rejected: { index: number; error: RegExp } };

const CASES: Case[] = [
  // The happy path, one prefix at a time.
  { name: 'discovered', events: TO_READY.slice(0, 1), status: { state: 'discovered', facts: { product: 'R650' }, reimageRequested: false } },
  { name: 'discovered -> assigned', events: TO_READY.slice(0, 2), status: { state: 'assigned', facts: { product: 'R650' } } },
  { name: '-> provision_started', events: TO_READY.slice(0, 3), status: { state: 'provisioning' } },
  { name: '-> stage', events: TO_READY.slice(0, 4), status: { state: 'provisioning', stage: 'download' } },
  { name: '-> installed drops the stage', events: TO_READY.slice(0, 5), status: { state: 'installed' }, absent: ['stage'] },
  { name: '-> configure_started', events: TO_READY.slice(0, 6), status: { state: 'configuring' } },
  { name: '-> ready', events: TO_READY, status: { state: 'ready', facts: { product: 'R650' }, reimageRequested: false }, absent: ['stage', 'reason'] },
  { name: 'an inventory node starts at assigned', events: [assigned], status: { state: 'assigned', facts: {} } },
  { name: 'stages replace each other', events: [assigned, provision, stage('download'), stage('unpack')], status: { state: 'provisioning', stage: 'unpack' } },
  { name: 'reconfiguring a ready node', events: [...TO_READY, configure], status: { state: 'configuring' } },
  { name: 'provisioning restarts after a reboot mid-install', events: [assigned, provision, stage('download'), provision], status: { state: 'provisioning' }, absent: ['stage'] },

  // Failure, from every state of the happy path.
  ...TO_READY.map((_, i): Case => ({
    name: `failed after ${TO_READY[i]!.type}`,
    events: [...TO_READY.slice(0, i + 1), failed(`boom ${i}`)],
    status: { state: 'failed', reason: `boom ${i}` },
    absent: ['stage'],
  })),
  { name: 'failed records the stage it failed in', events: [assigned, provision, stage('download'), failed('disk', 'partition')], status: { state: 'failed', reason: 'disk', stage: 'partition' } },
  { name: 'failed again replaces the reason', events: [assigned, failed('a'), failed('b')], status: { state: 'failed', reason: 'b' } },
  { name: 'failed with no status', events: [failed('x')], rejected: { index: 0, error: /"failed" is not allowed in state "nothing"/ } },

  // Leaving failed clears the reason.
  { name: 'failed -> assigned', events: [assigned, failed('x'), assigned], status: { state: 'assigned' }, absent: ['reason'] },
  { name: 'failed -> provision_started', events: [assigned, provision, failed('x', 'dl'), provision], status: { state: 'provisioning' }, absent: ['reason', 'stage'] },
  { name: 'failed -> configure_started', events: [...TO_READY, failed('x'), configure], status: { state: 'configuring' }, absent: ['reason'] },
  {
    name: 'a late states failure does not replace a failed reinstall (its disk is not to be booted)',
    events: [...TO_READY, reimage(), provision, failed('disk write error', 'unpack'), failed('ssh: unreachable', 'states')],
    rejected: { index: 10, error: /the install failed \(stage unpack\): a states failure from before the reinstall does not replace it/ },
  },
  {
    name: 'a late readiness failure does not replace an install failure either',
    events: [assigned, provision, failed('no disk', 'partition'), failed('slurmd down', 'readiness')],
    rejected: { index: 3, error: /the install failed \(stage partition\)/ },
  },
  {
    name: 'a states failure after a states failure is taken (the installed OS is still bootable)',
    events: [...TO_READY, failed('a', 'states'), failed('b', 'readiness')],
    status: { state: 'failed', reason: 'b', stage: 'readiness' },
  },
  { name: 'a refused plan fetch on a ready node is taken and changes nothing', events: [...TO_READY, { type: 'plan_refused', reason: 'replay' }], status: { state: 'ready', reimageRequested: false }, absent: ['stage'] },
  { name: 'a refused plan fetch on an installing node becomes its stage', events: [assigned, provision, { type: 'plan_refused', reason: 'replay' }], status: { state: 'provisioning', stage: 'plan-refused' } },
  { name: 'a refused plan fetch needs a node', events: [{ type: 'plan_refused', reason: 'x' }], rejected: { index: 0, error: /"plan_refused" is not allowed in state "nothing"/ } },
  { name: 'a reimage request on a failed node keeps the reason', events: [assigned, failed('x'), reimage()], status: { state: 'failed', reason: 'x', reimageRequested: true } },

  // Reimage.
  {
    name: 'reimage requested on ready remembers the group it moved the node out of',
    events: [...TO_READY, reimage('gpu')],
    status: { state: 'ready', reimageRequested: true, reimageFromGroup: 'gpu' },
  },
  {
    name: 'reimage then provision_started clears the flag and the group left (the move is done)',
    events: [...TO_READY, reimage('gpu'), provision],
    status: { state: 'provisioning', reimageRequested: false },
    absent: ['reimageFromGroup'],
  },
  {
    name: 'a second request while one is pending keeps the first group left (the one the installed OS runs)',
    events: [...TO_READY, reimage('slurm'), reimage('k3s')],
    status: { state: 'ready', reimageRequested: true, reimageFromGroup: 'slurm' },
  },
  {
    name: 'a request with a move after one without takes the group left',
    events: [...TO_READY, reimage(), reimage('slurm')],
    status: { state: 'ready', reimageRequested: true, reimageFromGroup: 'slurm' },
  },
  {
    name: 'a request without a move after one with keeps the group left',
    events: [...TO_READY, reimage('slurm'), reimage()],
    status: { state: 'ready', reimageRequested: true, reimageFromGroup: 'slurm' },
  },
  {
    name: 'a new request after a finished reimage does not inherit the old group left',
    events: [...TO_READY, reimage('slurm'), provision, installed, configure, ready, reimage()],
    status: { state: 'ready', reimageRequested: true },
    absent: ['reimageFromGroup'],
  },
  { name: 'reimage from installed', events: [assigned, provision, installed, reimage(), provision], status: { state: 'provisioning', reimageRequested: false } },
  { name: 'reimage cancelled clears the request', events: [...TO_READY, reimage('gpu'), cancel], status: { state: 'ready', reimageRequested: false }, absent: ['reimageFromGroup'] },
  { name: 'reimage on an assigned node, then provisioning', events: [assigned, reimage('gpu'), provision], status: { state: 'provisioning', reimageRequested: false }, absent: ['reimageFromGroup'] },
  {
    name: 'provision_started from ready without reimage',
    events: [...TO_READY, provision],
    rejected: { index: 7, error: /node is "ready" and no reimage was requested/ },
  },
  {
    name: 'provision_started after a cancelled reimage',
    events: [...TO_READY, reimage(), cancel, provision],
    rejected: { index: 9, error: /no reimage was requested/ },
  },
  { name: 'reimage on discovered', events: [discovered(), reimage('gpu')], rejected: { index: 1, error: /"reimage_requested" is not allowed in state "discovered"/ } },
  { name: 'reimage with no status', events: [reimage()], rejected: { index: 0, error: /not allowed in state "nothing"/ } },
  { name: 'cancel with no status', events: [cancel], rejected: { index: 0, error: /"reimage_cancelled"/ } },

  // Out-of-order events.
  { name: 'ready from provisioning', events: TO_READY.slice(0, 4).concat(ready), rejected: { index: 4, error: /"ready" is not allowed in state "provisioning"/ } },
  { name: 'installed from assigned', events: [assigned, installed], rejected: { index: 1, error: /"installed" is not allowed in state "assigned"/ } },
  { name: 'stage outside provisioning', events: [assigned, stage('x')], rejected: { index: 1, error: /"stage" is not allowed in state "assigned"/ } },
  { name: 'provision_started on a discovered machine', events: [discovered(), provision], rejected: { index: 1, error: /"provision_started" is not allowed in state "discovered"/ } },
  { name: 'provision_started with no status', events: [provision], rejected: { index: 0, error: /not allowed in state "nothing"/ } },
  { name: 'configure_started from provisioning', events: [assigned, provision, configure], rejected: { index: 2, error: /"configure_started"/ } },
  { name: 'ready with no status', events: [ready], rejected: { index: 0, error: /"ready"/ } },
  { name: 'failed in readiness -> configure_started', events: [...TO_READY, failed('slurmd down', 'readiness'), configure], status: { state: 'configuring' }, absent: ['reason', 'stage'] },
  { name: 'configure_started after a failed install', events: [assigned, provision, failed('sha256 mismatch', 'verify'), configure], rejected: { index: 3, error: /the install failed \(stage verify\): nothing to configure until the node is reimaged/ } },
  { name: 'a states failure while provisioning (stale, after a reimage)', events: [...TO_READY, reimage(), provision, failed('unreachable', 'states')], rejected: { index: 9, error: /a states failure does not apply to a node that is provisioning/ } },
  { name: 'a readiness failure on an assigned node', events: [assigned, failed('x', 'readiness')], rejected: { index: 1, error: /a readiness failure does not apply to a node that is assigned/ } },
  { name: 'an installer failure while provisioning', events: [assigned, provision, failed('disk', 'partition')], status: { state: 'failed', stage: 'partition', reason: 'disk' } },
  // The installer retries a report whose response was lost; then its fail() must not undo a finished install.
  { name: 'installed reported twice', events: [assigned, provision, installed, installed], status: { state: 'installed' }, absent: ['reason', 'stage'] },
  // The image on the disk: recorded by the install, kept through configuration, forgotten when the disk is rewritten.
  { name: 'installed records the image on the disk', events: [assigned, provision, installedWith(IMAGE_A)], status: { state: 'installed', installedImage: IMAGE_A } },
  { name: 'the installed image stays through configuration', events: [assigned, provision, installedWith(IMAGE_A), configure, ready, configure, failed('x', 'readiness')], status: { state: 'failed', installedImage: IMAGE_A } },
  { name: 'a reimage request keeps it (the disk is untouched until provisioning)', events: [assigned, provision, installedWith(IMAGE_A), configure, ready, reimage()], status: { state: 'ready', installedImage: IMAGE_A } },
  { name: 'provisioning again forgets it', events: [assigned, provision, installedWith(IMAGE_A), reimage(), provision], status: { state: 'provisioning' }, absent: ['installedImage'] },
  { name: 'a reinstall records the new image', events: [assigned, provision, installedWith(IMAGE_A), reimage(), provision, installedWith(IMAGE_B)], status: { installedImage: IMAGE_B } },
  { name: 'an installer without the field leaves it unknown', events: [assigned, provision, installedWith(IMAGE_A), installed], status: { state: 'installed' }, absent: ['installedImage'] },
  { name: 'an installer failure after installed', events: [assigned, provision, installed, failed('no answer to installed', 'finish')], rejected: { index: 3, error: /an install failure \(stage finish\) does not apply to a node that is installed/ } },
  { name: 'an installer failure on a ready node', events: [...TO_READY, failed('late', 'download')], rejected: { index: TO_READY.length, error: /does not apply to a node that is ready/ } },
  { name: 'an installer failure on a failed node replaces the reason', events: [assigned, provision, failed('a', 'download'), failed('b', 'verify')], status: { state: 'failed', stage: 'verify', reason: 'b' } },

  // Discovery.
  {
    name: 'discovered again refreshes facts',
    events: [discovered({ a: 1, b: 1 }), discovered({ b: 2, c: null })],
    status: { state: 'discovered', facts: { a: 1, b: 2, c: null } },
  },
  { name: 'discovered never demotes a known node', events: [assigned, discovered()], rejected: { index: 1, error: /"discovered" is not allowed in state "assigned"/ } },
  { name: 'discovered never demotes a ready node', events: [...TO_READY, discovered()], rejected: { index: 7, error: /state "ready"/ } },

  // Removal from the inventory: the record is a discovered machine again, whatever it was.
  {
    name: 'removed: a ready node with an image on disk and a pending reimage is discovered, facts kept',
    events: [...TO_READY.slice(0, 4), installedWith(IMAGE_A), configure, ready, reimage('gpu'), removed],
    status: { state: 'discovered', reimageRequested: false, facts: { product: 'R650' } },
    absent: ['installedImage', 'reimageFromGroup', 'reason', 'stage'],
  },
  { name: 'removed: a failed install leaves no failure behind', events: [assigned, provision, failed('disk', 'partition'), removed], status: { state: 'discovered' }, absent: ['reason', 'stage'] },
  { name: 'removed: an installing node', events: [assigned, provision, stage('download'), removed], status: { state: 'discovered' }, absent: ['stage'] },
  { name: 'removed, then added again: assigned, and its next boot installs', events: [...TO_READY, removed, assigned, provision], status: { state: 'provisioning' } },
  { name: 'removed, then a boot: discovered again refreshes facts', events: [...TO_READY, removed, discovered({ product: 'R750' })], status: { state: 'discovered', facts: { product: 'R750' } } },
  { name: 'removed with no status', events: [removed], rejected: { index: 0, error: /"removed" is not allowed in state "nothing"/ } },
  // Wipes (rackseed wipe): requested on any inventory node, under way while the installer erases, then wiped.
  { name: 'wipe requested on a ready node: still ready, the mode kept', events: [...TO_READY, wipe('full')], status: { state: 'ready', wipeRequested: 'full' } },
  { name: 'a second request changes the mode', events: [...TO_READY, wipe('full'), wipe('quick')], status: { wipeRequested: 'quick' } },
  { name: 'wipe of a machine outside the inventory', events: [discovered(), wipe()], rejected: { index: 1, error: /"wipe_requested" is not allowed in state "discovered"/ } },
  {
    name: 'wipe_started: wiping, the image on the disk forgotten, the request kept (a reboot wipes again)',
    events: [...TO_READY.slice(0, 4), installedWith(IMAGE_A), configure, ready, wipe(), wipeStart],
    status: { state: 'wiping', wipeRequested: 'quick' },
    absent: ['installedImage', 'reason'],
  },
  { name: 'wipe_started without a request', events: [...TO_READY, wipeStart], rejected: { index: TO_READY.length, error: /no wipe was requested/ } },
  { name: 'stages while wiping', events: [...TO_READY, wipe(), wipeStart, stage('wipe')], status: { state: 'wiping', stage: 'wipe' } },
  { name: 'wiped: the request is done', events: [...TO_READY, wipe(), wipeStart, stage('wipe'), wiped], status: { state: 'wiped' }, absent: ['wipeRequested', 'stage', 'installedImage'] },
  { name: 'a repeated wiped report', events: [...TO_READY, wipe(), wipeStart, wiped, wiped], status: { state: 'wiped' } },
  // Asked again in full while the quick wipe ran: the quick one's report does not do away with the full one.
  { name: 'wiped in another mode than the one asked since keeps the request', events: [...TO_READY, wipe('quick'), wipeStart, wipe('full'), wiped], status: { state: 'wiped', wipeRequested: 'full' } },
  { name: 'wiped without wiping', events: [...TO_READY, wipe(), wiped], rejected: { index: TO_READY.length + 1, error: /"wiped" is not allowed in state "ready"/ } },
  {
    name: 'a wipe that failed at any step fails in stage wipe, and is not started again by itself',
    events: [...TO_READY, wipe(), wipeStart, failed('no DHCP lease on any interface', 'boot')],
    status: { state: 'failed', stage: 'wipe', reason: 'boot: no DHCP lease on any interface' },
    absent: ['wipeRequested'],
  },
  { name: 'a write error in the wipe stage keeps its reason', events: [...TO_READY, wipe(), wipeStart, failed('write error on sda', 'wipe')], status: { state: 'failed', stage: 'wipe', reason: 'write error on sda' } },
  { name: 'a failed wipe, wiped again', events: [...TO_READY, wipe(), wipeStart, failed('x', 'wipe'), wipe(), wipeStart, wiped], status: { state: 'wiped' } },
  { name: 'cancel before the wipe starts', events: [...TO_READY, wipe(), wipeCancel], status: { state: 'ready' }, absent: ['wipeRequested'] },
  { name: 'no cancel while wiping', events: [...TO_READY, wipe(), wipeStart, wipeCancel], rejected: { index: TO_READY.length + 2, error: /past cancelling/ } },
  { name: 'a wiped node is not configured', events: [...TO_READY, wipe(), wipeStart, wiped, configure], rejected: { index: TO_READY.length + 3, error: /"configure_started" is not allowed in state "wiped"/ } },
  { name: 'a wiped node provisions once reimaged', events: [...TO_READY, wipe(), wipeStart, wiped, reimage(), provision], status: { state: 'provisioning', reimageRequested: false } },
  { name: 'a wiped node does not provision without a reimage', events: [...TO_READY, wipe(), wipeStart, wiped, provision], rejected: { index: TO_READY.length + 3, error: /no reimage was requested/ } },
  { name: 'a post-install failure does not reach a wiping node', events: [...TO_READY, wipe(), wipeStart, failed('late', 'readiness')], rejected: { index: TO_READY.length + 2, error: /does not apply to a node that is wiping/ } },
  { name: 'removed: a pending wipe goes too', events: [...TO_READY, wipe(), removed], status: { state: 'discovered' }, absent: ['wipeRequested'] },
  { name: 'a removed node cannot be provisioned before it is assigned', events: [...TO_READY, removed, provision], rejected: { index: TO_READY.length + 1, error: /"provision_started" is not allowed in state "discovered"/ } },
];

describe('lifecycle reducer', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const result = foldLifecycle(c.events);
    if ('rejected' in c) {
      expect(result.rejected?.index).toBe(c.rejected.index);
      expect(result.rejected?.error).toMatch(c.rejected.error);
      // The status returned is the one before the rejected event.
      expect(result.status).toEqual(foldLifecycle(c.events.slice(0, c.rejected.index)).status);
      return;
    }
    expect(result.rejected).toBeUndefined();
    expect(result.status).toMatchObject(c.status);
    for (const key of c.absent ?? []) expect(result.status).not.toHaveProperty(key);
  });

  it('is total and pure: every event in every state returns a transition and leaves the input untouched', () => {
    const events: LifecycleEvent[] = [discovered({ x: 1 }), assigned, provision, stage('s'), installed, installedWith(IMAGE_B), configure, ready, failed('r', 's'), reimage('g'), cancel, { type: 'plan_refused', reason: 'r' }, removed, wipe(), wipeCancel, wipeStart, wiped];
    const starts: (LifecycleStatus | undefined)[] = [
      undefined,
      ...LIFECYCLE_STATES.flatMap((state) => [false, true].map((reimageRequested) => deepFreeze<LifecycleStatus>({
        state,
        reimageRequested,
        ...(reimageRequested === (state.length % 2 === 0) ? { wipeRequested: 'full' as const } : {}),
        reason: 'why',
        stage: 'st',
        reimageFromGroup: 'g',
        installedImage: IMAGE_A,
        facts: { a: 1 },
      }))),
    ];
    for (const start of starts) {
      const before = structuredClone(start);
      for (const event of events) {
        const t = reduceLifecycle(start, event);
        expect(typeof t.ok).toBe('boolean');
        if (!t.ok) expect(t.error).toEqual(expect.any(String));
        expect(start).toEqual(before);
      }
    }
  });

  it('says whether a transition changed anything', () => {
    const assignedStatus = foldLifecycle([assigned]).status;
    expect(reduceLifecycle(assignedStatus, assigned)).toMatchObject({ ok: true, changed: false });
    expect(reduceLifecycle(assignedStatus, provision)).toMatchObject({ ok: true, changed: true });
    const installedA = foldLifecycle([assigned, provision, installedWith(IMAGE_A)]).status;
    expect(reduceLifecycle(installedA, installedWith(IMAGE_A))).toMatchObject({ ok: true, changed: false });
    expect(reduceLifecycle(installedA, installedWith(IMAGE_B))).toMatchObject({ ok: true, changed: true });
    const provisioning = foldLifecycle([assigned, provision, stage('a')]).status;
    expect(reduceLifecycle(provisioning, stage('a'))).toMatchObject({ ok: true, changed: false });
    expect(reduceLifecycle(provisioning, stage('b'))).toMatchObject({ ok: true, changed: true });
  });
});

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
