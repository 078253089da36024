import { describe, expect, it } from 'vitest';
import { RackseedError } from '../../server/model/errors.js';
import { FAILHARD_COMMENT, runPlan } from '../../server/state/run/runner.js';
import { ONCHANGES_UNMET_COMMENT, ONFAIL_UNMET_COMMENT } from '../../server/state/run/requisites.js';
import { cmdRun } from '../../server/state/modules/cmd.js';
import { FakeTransport, type FakeTransportOptions } from '../../server/state/transport/fake.js';
import type {
  CompiledPlan,
  CompiledState,
  ExecOptions,
  ExecResult,
  ModuleContext,
  NodeFacts,
  RequisiteKind,
  RetrySpec,
  StateFunction,
  StateResult,
} from '../../server/state/types.js';

// ---------------------------------------------------------------------------------------------------------------
// A tiny module registry. Every call is logged as 'module.fun:check|apply|watch:id' so tests can assert what ran.

type ModuleLog = string[];

function makeRegistry(log: ModuleLog): Map<string, StateFunction> {
  const note = (state: CompiledState, phase: string): void => {
    log.push(`${state.module}.${state.fun}:${phase}:${state.id}`);
  };
  const registry = new Map<string, StateFunction>();

  registry.set('test.nop', {
    async check(state) {
      note(state, 'check');
      return { inSync: true, changes: {}, comment: 'Success!' };
    },
    async apply(state) {
      note(state, 'apply');
      return { result: true, changes: {}, comment: 'Success!' };
    },
  });
  registry.set('test.succeed_with_changes', {
    async check(state) {
      note(state, 'check');
      return { inSync: false, changes: { testing: { old: 'Unchanged', new: 'Something pretended to change' } }, comment: 'would change' };
    },
    async apply(state) {
      note(state, 'apply');
      return { result: true, changes: { testing: { old: 'Unchanged', new: 'Something pretended to change' } }, comment: 'Success!' };
    },
  });
  registry.set('test.fail', {
    async check(state) {
      note(state, 'check');
      return { inSync: false, changes: { testing: 'would fail' }, comment: 'would change' };
    },
    async apply(state) {
      note(state, 'apply');
      return { result: false, changes: {}, comment: 'Failure!' };
    },
  });
  registry.set('test.throw', {
    async check(state) {
      note(state, 'check');
      throw new Error('boom: the module broke');
    },
    async apply(state) {
      note(state, 'apply');
      return { result: true, changes: {}, comment: '' };
    },
  });
  // A file whose wanted content is args.content, kept in the fake transport's in-memory files.
  registry.set('file.managed', {
    async check(state, ctx) {
      note(state, 'check');
      const current = await ctx.transport.readFile(state.name);
      const wanted = String(state.args.content);
      if (current?.toString() === wanted) return { inSync: true, changes: {}, comment: `File ${state.name} is in the correct state` };
      return { inSync: false, changes: { diff: current === undefined ? 'New file' : `- ${current.toString()}\n+ ${wanted}` }, comment: `File ${state.name} would be updated` };
    },
    async apply(state, ctx, checked) {
      note(state, 'apply');
      await ctx.transport.writeFile(state.name, String(state.args.content), { mode: '0644' });
      return { result: true, changes: checked.changes, comment: `File ${state.name} updated` };
    },
  });
  // A service whose running state is asked of `systemctl is-active`; the fake node answers from a set.
  registry.set('service.running', {
    async check(state, ctx) {
      note(state, 'check');
      const { code } = await ctx.transport.exec(`systemctl is-active ${state.name}`, { timeoutMs: ctx.timeoutMs });
      return code === 0
        ? { inSync: true, changes: {}, comment: `The service ${state.name} is already running` }
        : { inSync: false, changes: { [state.name]: true }, comment: `Service ${state.name} is set to start` };
    },
    async apply(state, ctx) {
      note(state, 'apply');
      const { code } = await ctx.transport.exec(`systemctl start ${state.name}`, { timeoutMs: ctx.timeoutMs });
      return { result: code === 0, changes: code === 0 ? { [state.name]: true } : {}, comment: `Started service ${state.name}` };
    },
    async watch(state, ctx) {
      note(state, 'watch');
      const { code } = await ctx.transport.exec(`systemctl restart ${state.name}`, { timeoutMs: ctx.timeoutMs });
      return { result: code === 0, changes: { [state.name]: 'restarted' }, comment: `Service restarted` };
    },
  });
  // Runs args.command on apply (never in sync); result follows its exit code.
  registry.set('cmd.run', {
    async check(state) {
      note(state, 'check');
      return { inSync: false, changes: { cmd: state.name }, comment: `Command "${state.name}" would have been executed` };
    },
    async apply(state, ctx) {
      note(state, 'apply');
      const { code } = await ctx.transport.exec(state.name);
      return { result: code === 0, changes: { retcode: code }, comment: `Command "${state.name}" run` };
    },
  });
  return registry;
}

// ---------------------------------------------------------------------------------------------------------------
// Building plans directly (the compiler is not under test here).

interface StateSpec {
  id: string;
  fn: string;
  name?: string;
  args?: Record<string, unknown>;
  /** Requisites by the target's state ID; the ref is written `module: id` as an author would. */
  req?: Partial<Record<RequisiteKind, string[]>>;
  unless?: string[];
  onlyif?: string[];
  creates?: string[];
  failhard?: boolean;
  retry?: RetrySpec;
}

function keyOf(module: string, id: string, name: string, fun: string): string {
  return `${module}_|-${id}_|-${name}_|-${fun}`;
}

function plan(...specs: StateSpec[]): CompiledPlan {
  const heads = specs.map((spec) => {
    const [module = '', fun = ''] = spec.fn.split('.');
    const name = spec.name ?? spec.id;
    return { spec, module, fun, name, key: keyOf(module, spec.id, name, fun) };
  });
  const states = heads.map(({ spec, module, fun, name, key }, index): CompiledState => ({
    id: spec.id,
    sls: 'unit.test',
    module,
    fun,
    name,
    key,
    index,
    args: spec.args ?? {},
    requisites: Object.entries(spec.req ?? {}).flatMap(([kind, ids]) =>
      (ids ?? []).map((id) => {
        const target = heads.find((h) => h.spec.id === id);
        if (target === undefined) throw new Error(`test plan: no state ${id}`);
        return { kind: kind as RequisiteKind, on: [target.key], ref: { module: target.module, target: id } };
      }),
    ),
    unless: spec.unless ?? [],
    onlyif: spec.onlyif ?? [],
    creates: spec.creates ?? [],
    failhard: spec.failhard ?? false,
    ...(spec.retry ? { retry: spec.retry } : {}),
    source: { file: 'unit/test.sls', line: index + 1 },
  }));
  return { states };
}

const FACTS: NodeFacts = {
  osFamily: 'debian',
  osId: 'debian',
  osRelease: '12',
  kernel: '6.1.0',
  arch: 'x86_64',
  cpus: 2,
  memoryMiB: 2048,
  hostname: 'gpu001',
  gpus: [],
  nics: [],
};

/** A FakeTransport that also records the timeout each command was given. */
class TimeoutRecordingTransport extends FakeTransport {
  readonly timeouts: Array<number | undefined> = [];
  override async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    this.timeouts.push(options.timeoutMs);
    return super.exec(command, options);
  }
}

interface Harness {
  transport: TimeoutRecordingTransport;
  log: ModuleLog;
  sleeps: number[];
  streamed: StateResult[];
  run(p: CompiledPlan, opts?: { test?: boolean; failhard?: boolean }): ReturnType<typeof runPlan>;
}

/** `modules` replaces stubs of the tiny registry with real module functions. */
function harness(transportOptions: FakeTransportOptions = {}, modules: Record<string, StateFunction> = {}): Harness {
  const transport = new TimeoutRecordingTransport('gpu001', transportOptions);
  const log: ModuleLog = [];
  const registry = makeRegistry(log);
  for (const [name, fn] of Object.entries(modules)) registry.set(name, fn);
  const sleeps: number[] = [];
  const streamed: StateResult[] = [];
  let clock = 1_700_000_000_000;
  const context: ModuleContext = {
    transport,
    facts: FACTS,
    timeoutMs: 5_000,
    renderTemplate: (text) => text,
    readSource: async (source) => ({ text: '', file: source }),
  };
  return {
    transport,
    log,
    sleeps,
    streamed,
    run: (p, opts = {}) =>
      runPlan(p, {
        registry,
        context,
        options: { test: opts.test ?? false, ...(opts.failhard ? { failhard: true } : {}) },
        onResult: (r) => streamed.push(r),
        now: () => (clock += 10),
        sleep: async (ms) => {
          sleeps.push(ms);
        },
      }),
  };
}

function byId(results: StateResult[]): Record<string, Pick<StateResult, 'result' | 'changes' | 'comment'>> {
  return Object.fromEntries(results.map((r) => [r.id, { result: r.result, changes: r.changes, comment: r.comment }]));
}

const FAILED_A = 'One or more requisite failed: test: a';

// ---------------------------------------------------------------------------------------------------------------

describe('runPlan: test and apply mode basics', () => {
  it('apply mode: in-sync states succeed without changes, others are applied', async () => {
    const h = harness();
    const { results, aborted } = await h.run(plan({ id: 'a', fn: 'test.nop' }, { id: 'b', fn: 'test.succeed_with_changes' }, { id: 'c', fn: 'test.fail' }));
    expect(aborted).toBeUndefined();
    expect(byId(results)).toEqual({
      a: { result: true, changes: {}, comment: 'Success!' },
      b: { result: true, changes: { testing: { old: 'Unchanged', new: 'Something pretended to change' } }, comment: 'Success!' },
      c: { result: false, changes: {}, comment: 'Failure!' },
    });
    expect(h.log).toEqual(['test.nop:check:a', 'test.succeed_with_changes:check:b', 'test.succeed_with_changes:apply:b', 'test.fail:check:c', 'test.fail:apply:c']);
  });

  it('test mode: only checks run; would-change states are null with the predicted changes', async () => {
    const h = harness();
    const { results } = await h.run(plan({ id: 'a', fn: 'test.nop' }, { id: 'b', fn: 'test.succeed_with_changes' }, { id: 'c', fn: 'file.managed', name: '/etc/motd', args: { content: 'hi' } }), { test: true });
    expect(byId(results)).toEqual({
      a: { result: true, changes: {}, comment: 'Success!' },
      b: { result: null, changes: { testing: { old: 'Unchanged', new: 'Something pretended to change' } }, comment: 'would change' },
      c: { result: null, changes: { diff: 'New file' }, comment: 'File /etc/motd would be updated' },
    });
    expect(h.log.filter((l) => !l.includes(':check:'))).toEqual([]);
    expect(h.transport.calls.filter((c) => c.op === 'writeFile')).toEqual([]);
  });

  it('stamps identity, run number and timing from the injected clock, and streams each result', async () => {
    const h = harness();
    const { results } = await h.run(plan({ id: 'a', fn: 'test.nop' }, { id: 'b', fn: 'test.nop', name: 'other' }));
    expect(results.map((r) => [r.key, r.id, r.name, r.sls, r.module, r.fun, r.runNum, r.startedAt, r.durationMs])).toEqual([
      ['test_|-a_|-a_|-nop', 'a', 'a', 'unit.test', 'test', 'nop', 0, 1_700_000_000_010, 10],
      ['test_|-b_|-other_|-nop', 'b', 'other', 'unit.test', 'test', 'nop', 1, 1_700_000_000_030, 10],
    ]);
    expect(h.streamed).toEqual(results);
  });

  it('an unknown module function fails that state, naming it, and the run goes on', async () => {
    const h = harness();
    const { results } = await h.run(plan({ id: 'a', fn: 'pkg.levitate' }, { id: 'b', fn: 'test.nop' }));
    expect(results[0]?.result).toBe(false);
    expect(results[0]?.comment).toContain('pkg.levitate');
    expect(results[1]?.result).toBe(true);
  });

  it('an exception from a module fails that state with its message, and the run goes on', async () => {
    const h = harness();
    const { results, aborted } = await h.run(plan({ id: 'a', fn: 'test.throw' }, { id: 'b', fn: 'test.succeed_with_changes' }));
    expect(byId(results).a).toEqual({ result: false, changes: {}, comment: 'boom: the module broke' });
    expect(results[1]?.result).toBe(true);
    expect(aborted).toBeUndefined();
  });
});

// Each row: a plan with `a` (the target) and `b` (the state with the requisite); what b must end as, and whether
// b's module ran at all.
interface RequisiteRow {
  title: string;
  test: boolean;
  a: string;
  b: StateSpec;
  expected: Pick<StateResult, 'result' | 'changes' | 'comment'>;
  bRan: boolean;
}

const CHANGES = { testing: { old: 'Unchanged', new: 'Something pretended to change' } };

const requisiteRows: RequisiteRow[] = [
  // require
  { title: 'require met (apply)', test: false, a: 'test.succeed_with_changes', b: { id: 'b', fn: 'test.succeed_with_changes', req: { require: ['a'] } }, expected: { result: true, changes: CHANGES, comment: 'Success!' }, bRan: true },
  { title: 'require failed (apply)', test: false, a: 'test.fail', b: { id: 'b', fn: 'test.succeed_with_changes', req: { require: ['a'] } }, expected: { result: false, changes: {}, comment: FAILED_A }, bRan: false },
  { title: 'require on a would-change state is ok in test mode', test: true, a: 'test.fail', b: { id: 'b', fn: 'test.succeed_with_changes', req: { require: ['a'] } }, expected: { result: null, changes: CHANGES, comment: 'would change' }, bRan: true },
  { title: 'require failed in test mode', test: true, a: 'test.throw', b: { id: 'b', fn: 'test.nop', req: { require: ['a'] } }, expected: { result: false, changes: {}, comment: FAILED_A }, bRan: false },
  // watch on a module without a watch action behaves like require
  { title: 'watch without a watch action acts as require (met)', test: false, a: 'test.succeed_with_changes', b: { id: 'b', fn: 'test.nop', req: { watch: ['a'] } }, expected: { result: true, changes: {}, comment: 'Success!' }, bRan: true },
  { title: 'watch failed', test: false, a: 'test.fail', b: { id: 'b', fn: 'test.nop', req: { watch: ['a'] } }, expected: { result: false, changes: {}, comment: FAILED_A }, bRan: false },
  // onchanges
  { title: 'onchanges met (apply)', test: false, a: 'test.succeed_with_changes', b: { id: 'b', fn: 'test.succeed_with_changes', req: { onchanges: ['a'] } }, expected: { result: true, changes: CHANGES, comment: 'Success!' }, bRan: true },
  { title: 'onchanges unmet (apply)', test: false, a: 'test.nop', b: { id: 'b', fn: 'test.succeed_with_changes', req: { onchanges: ['a'] } }, expected: { result: true, changes: {}, comment: ONCHANGES_UNMET_COMMENT }, bRan: false },
  { title: 'onchanges met by a predicted change (test)', test: true, a: 'test.succeed_with_changes', b: { id: 'b', fn: 'test.succeed_with_changes', req: { onchanges: ['a'] } }, expected: { result: null, changes: CHANGES, comment: 'would change' }, bRan: true },
  { title: 'onchanges unmet (test)', test: true, a: 'test.nop', b: { id: 'b', fn: 'test.succeed_with_changes', req: { onchanges: ['a'] } }, expected: { result: true, changes: {}, comment: ONCHANGES_UNMET_COMMENT }, bRan: false },
  { title: 'onchanges on a failed state is a failed requisite', test: false, a: 'test.fail', b: { id: 'b', fn: 'test.nop', req: { onchanges: ['a'] } }, expected: { result: false, changes: {}, comment: FAILED_A }, bRan: false },
  // onfail
  { title: 'onfail met (apply)', test: false, a: 'test.fail', b: { id: 'b', fn: 'test.succeed_with_changes', req: { onfail: ['a'] } }, expected: { result: true, changes: CHANGES, comment: 'Success!' }, bRan: true },
  { title: 'onfail unmet (apply)', test: false, a: 'test.succeed_with_changes', b: { id: 'b', fn: 'test.succeed_with_changes', req: { onfail: ['a'] } }, expected: { result: true, changes: {}, comment: ONFAIL_UNMET_COMMENT }, bRan: false },
  { title: 'onfail: a predicted change is not a failure (test)', test: true, a: 'test.fail', b: { id: 'b', fn: 'test.succeed_with_changes', req: { onfail: ['a'] } }, expected: { result: true, changes: {}, comment: ONFAIL_UNMET_COMMENT }, bRan: false },
  { title: 'onfail met by a real failure (test)', test: true, a: 'test.throw', b: { id: 'b', fn: 'test.succeed_with_changes', req: { onfail: ['a'] } }, expected: { result: null, changes: CHANGES, comment: 'would change' }, bRan: true },
];

describe('runPlan: requisites', () => {
  it.each(requisiteRows)('$title', async (row) => {
    const h = harness();
    const { results } = await h.run(plan({ id: 'a', fn: row.a }, row.b), { test: row.test });
    expect(byId(results).b).toEqual(row.expected);
    expect(h.log.some((l) => l.endsWith(':b'))).toBe(row.bRan);
  });

  it('a failed requisite names every failed target, and only the failed ones', async () => {
    const h = harness({ handler: (cmd) => (cmd === 'false' ? { code: 1, stdout: '', stderr: '' } : undefined) });
    const { results } = await h.run(
      plan({ id: 'a', fn: 'test.fail' }, { id: 'x', fn: 'test.nop' }, { id: 'c', fn: 'cmd.run', name: 'false' }, { id: 'b', fn: 'test.nop', req: { require: ['a', 'x'], watch: ['c'] } }),
    );
    expect(byId(results).b).toEqual({ result: false, changes: {}, comment: 'One or more requisite failed: test: a, cmd: c' });
  });

  it('a failed requisite propagates down a chain', async () => {
    const h = harness();
    const { results } = await h.run(plan({ id: 'a', fn: 'test.fail' }, { id: 'b', fn: 'test.nop', req: { require: ['a'] } }, { id: 'c', fn: 'test.nop', req: { require: ['b'] } }));
    expect(results.map((r) => r.comment)).toEqual(['Failure!', FAILED_A, 'One or more requisite failed: test: b']);
  });

  it('a state skipped by unmet onchanges still satisfies require', async () => {
    const h = harness();
    const { results } = await h.run(plan({ id: 'a', fn: 'test.nop' }, { id: 'b', fn: 'test.nop', req: { onchanges: ['a'] } }, { id: 'c', fn: 'test.succeed_with_changes', req: { require: ['b'] } }));
    expect(results.map((r) => r.result)).toEqual([true, true, true]);
    expect(results[2]?.comment).toBe('Success!');
  });
});

describe('runPlan: prereq', () => {
  // `stop` runs before the config file changes (e.g. stop a service before replacing its binary), only if it will.
  const prereqPlan = (content: string): CompiledPlan =>
    plan({ id: 'stop', fn: 'cmd.run', name: 'systemctl stop slurmd', req: { prereq: ['conf'] } }, { id: 'conf', fn: 'file.managed', name: '/etc/slurm/slurm.conf', args: { content } });

  it('runs the state first when the prereq target would change, then the target', async () => {
    const h = harness({ files: { '/etc/slurm/slurm.conf': 'old' } });
    const { results } = await h.run(prereqPlan('new'));
    expect(results.map((r) => r.result)).toEqual([true, true]);
    expect(h.transport.commands).toEqual(['systemctl stop slurmd']);
    expect(h.log).toEqual(['file.managed:check:conf', 'cmd.run:check:stop', 'cmd.run:apply:stop', 'file.managed:check:conf', 'file.managed:apply:conf']);
  });

  it('skips the state with "No changes detected" when the target would not change', async () => {
    const h = harness({ files: { '/etc/slurm/slurm.conf': 'same' } });
    const { results } = await h.run(prereqPlan('same'));
    expect(byId(results).stop).toEqual({ result: true, changes: {}, comment: 'No changes detected' });
    expect(h.transport.commands).toEqual([]);
    expect(h.log.filter((l) => l.includes('cmd.run'))).toEqual([]);
  });

  it('test mode: the state is null when the target would change, and nothing runs', async () => {
    const h = harness({ files: { '/etc/slurm/slurm.conf': 'old' } });
    const { results } = await h.run(prereqPlan('new'), { test: true });
    expect(results.map((r) => r.result)).toEqual([null, null]);
    expect(results[0]?.comment).toBe('Command "systemctl stop slurmd" would have been executed; would run because prereq file: conf would change');
    expect(h.transport.commands).toEqual([]);
    expect(h.transport.calls.filter((c) => c.op === 'writeFile')).toEqual([]);
  });

  it('test mode: the state is skipped when the target is in sync', async () => {
    const h = harness({ files: { '/etc/slurm/slurm.conf': 'same' } });
    const { results } = await h.run(prereqPlan('same'), { test: true });
    expect(byId(results).stop).toEqual({ result: true, changes: {}, comment: 'No changes detected' });
  });

  it('a failed prereq state stops its target (Salt\'s graceful-down / site-code): the file is not replaced', async () => {
    const h = harness({ files: { '/etc/slurm/slurm.conf': 'old' }, handler: (cmd) => (cmd === 'systemctl stop slurmd' ? { code: 1, stdout: '', stderr: 'Failed to stop' } : undefined) });
    const { results } = await h.run(prereqPlan('new'));
    expect(byId(results).stop?.result).toBe(false);
    // Salt reports the unrun target by its test run (null: it would have changed), without the changes.
    expect(byId(results).conf).toEqual({ result: null, changes: {}, comment: 'File /etc/slurm/slurm.conf would be updated; not run because cmd: stop failed (its prereq)' });
    expect(h.transport.calls.filter((c) => c.op === 'writeFile')).toEqual([]);
  });

  it('a cmd state\'s unless and onlyif run in its cwd, as its runas user, with its env', async () => {
    const h = harness({ handler: (cmd) => (cmd.startsWith("cd -- '/opt/app' && runuser -u 'builder' -- env 'MODE=ci' '/bin/sh' -c 'test -f .built'") ? { code: 0, stdout: '', stderr: '' } : undefined) });
    const { results } = await h.run(plan({ id: 'build', fn: 'cmd.run', name: 'make', args: { cwd: '/opt/app', runas: 'builder', env: { MODE: 'ci' } }, unless: ['test -f .built'] }));
    expect(byId(results).build).toEqual({ result: true, changes: {}, comment: 'unless condition is true: test -f .built' });
    expect(h.transport.commands).toEqual(["cd -- '/opt/app' && runuser -u 'builder' -- env 'MODE=ci' '/bin/sh' -c 'test -f .built'"]);
  });

  it('a cmd state\'s guards get its env in Salt\'s list form too, with booleans as the command gets them', async () => {
    const h = harness({ handler: () => ({ code: 1, stdout: '', stderr: '' }) });
    await h.run(plan({ id: 'install', fn: 'cmd.run', name: 'make install', args: { cwd: '/opt/app', env: [{ PREFIX: '/opt/app/dist' }, { STRICT: true }] }, unless: ['test -x "$PREFIX/bin/app"'] }));
    const placed = `cd -- '/opt/app' && env 'PREFIX=/opt/app/dist' 'STRICT=1' '/bin/sh' -c`;
    expect(h.transport.commands[0]).toBe(`${placed} 'test -x "$PREFIX/bin/app"'`);
  });

  // The real cmd.run, not the stub: its dry-run prediction is what the requisites below read.
  const commandTriggers = (unless: string[]): CompiledPlan =>
    plan(
      { id: 'build', fn: 'cmd.run', name: 'make', unless },
      { id: 'reload', fn: 'cmd.run', name: 'systemctl reload app', req: { onchanges: ['build'] } },
      { id: 'app', fn: 'service.running', req: { watch: ['build'] } },
    );
  const running = (built: boolean): FakeTransportOptions => ({
    handler: (cmd) => (cmd === 'systemctl is-active app' || (built && cmd === 'test -f built') ? { code: 0, stdout: '', stderr: '' } : { code: 1, stdout: '', stderr: '' }),
  });

  it('a dry run predicts what a cmd.run triggers: its onchanges state would run and its watcher would restart', async () => {
    const h = harness(running(false), { 'cmd.run': cmdRun });
    const { results } = await h.run(commandTriggers(['test -f built']), { test: true });
    expect(byId(results).build).toMatchObject({ result: null, changes: { cmd: 'make' } });
    expect(byId(results).reload).toMatchObject({ result: null, changes: { cmd: 'systemctl reload app' } });
    expect(byId(results).app).toMatchObject({ result: null, comment: 'The service app is already running; watch action would run because cmd: build changed' });
    expect(h.transport.commands).toEqual(['test -f built', 'systemctl is-active app']);
  });

  it('a dry run of a cmd.run its guard would skip predicts nothing: no onchanges state, no restart', async () => {
    const h = harness(running(true), { 'cmd.run': cmdRun });
    const { results } = await h.run(commandTriggers(['test -f built']), { test: true });
    expect(byId(results).build).toEqual({ result: true, changes: {}, comment: 'unless condition is true: test -f built' });
    expect(byId(results).reload).toEqual({ result: true, changes: {}, comment: ONCHANGES_UNMET_COMMENT });
    expect(byId(results).app).toEqual({ result: true, changes: {}, comment: 'The service app is already running' });
  });

  it('a target its own unless would skip changes nothing: the state does not run (the service is not stopped for a deploy that does not happen)', async () => {
    const deployed = (cmd: string) => (cmd === 'test -f /opt/app/.deployed-v2' ? { code: 0, stdout: '', stderr: '' } : undefined);
    const h = harness({ handler: deployed });
    const { results } = await h.run(
      plan({ id: 'stop-app', fn: 'cmd.run', name: 'systemctl stop app', req: { prereq: ['deploy'] } }, { id: 'deploy', fn: 'cmd.run', name: 'deploy-v2', unless: ['test -f /opt/app/.deployed-v2'] }),
    );
    expect(byId(results)['stop-app']).toEqual({ result: true, changes: {}, comment: 'No changes detected' });
    expect(byId(results).deploy).toEqual({ result: true, changes: {}, comment: 'unless condition is true: test -f /opt/app/.deployed-v2' });
    expect(h.transport.commands.filter((c) => !c.startsWith('test -f'))).toEqual([]);
  });
});

// Salt's verdicts (salt/state.py check_requisite and call_chunk, 3006/3007) for a state `c` whose requisite target
// failed, was not run because its own requisite failed, or was not run because the state preparing it with prereq
// failed. Only a result of false fails a requisite; the unrun prereq target is null without changes.
interface CascadeRow {
  title: string;
  states: StateSpec[];
  c: Pick<StateResult, 'result' | 'changes' | 'comment'>;
  cRan: boolean;
}

const STOP_FAILS: FakeTransportOptions = {
  files: { '/etc/app.conf': 'old' },
  handler: (cmd) => (cmd === 'systemctl stop app' ? { code: 1, stdout: '', stderr: 'Failed to stop' } : undefined),
};
const stopThenConf: StateSpec[] = [
  { id: 'stop', fn: 'cmd.run', name: 'systemctl stop app', req: { prereq: ['conf'] } },
  { id: 'conf', fn: 'file.managed', name: '/etc/app.conf', args: { content: 'new' } },
];
const RAN = { result: true, changes: CHANGES, comment: 'Success!' };

const cascadeRows: CascadeRow[] = [
  // 1. prereq preparer failed: conf is not run (null, no changes)
  { title: '1. onchanges on a target its failed prereq left unrun: not run, result true', states: [...stopThenConf, { id: 'c', fn: 'test.succeed_with_changes', req: { onchanges: ['conf'] } }], c: { result: true, changes: {}, comment: ONCHANGES_UNMET_COMMENT }, cRan: false },
  { title: '1. require on a target its failed prereq left unrun: runs (null is not a failure)', states: [...stopThenConf, { id: 'c', fn: 'test.succeed_with_changes', req: { require: ['conf'] } }], c: RAN, cRan: true },
  { title: '1. watch on a target its failed prereq left unrun: runs, no watch action (no changes)', states: [...stopThenConf, { id: 'c', fn: 'test.succeed_with_changes', req: { watch: ['conf'] } }], c: RAN, cRan: true },
  { title: '1. onfail on a target its failed prereq left unrun: fires (the target did not succeed)', states: [...stopThenConf, { id: 'c', fn: 'test.succeed_with_changes', req: { onfail: ['conf'] } }], c: RAN, cRan: true },
  // 2. the target ran and failed
  { title: '2. onchanges on a failed target: failed requisite', states: [{ id: 'b', fn: 'test.fail' }, { id: 'c', fn: 'test.succeed_with_changes', req: { onchanges: ['b'] } }], c: { result: false, changes: {}, comment: 'One or more requisite failed: test: b' }, cRan: false },
  // 3. the target was not run because its own require failed (result false)
  { title: '3. onchanges on a target whose require failed: failed requisite', states: [{ id: 'x', fn: 'test.fail' }, { id: 'b', fn: 'test.succeed_with_changes', req: { require: ['x'] } }, { id: 'c', fn: 'test.succeed_with_changes', req: { onchanges: ['b'] } }], c: { result: false, changes: {}, comment: 'One or more requisite failed: test: b' }, cRan: false },
  { title: '3. watch on a target whose require failed: failed requisite', states: [{ id: 'x', fn: 'test.fail' }, { id: 'b', fn: 'test.succeed_with_changes', req: { require: ['x'] } }, { id: 'c', fn: 'test.succeed_with_changes', req: { watch: ['b'] } }], c: { result: false, changes: {}, comment: 'One or more requisite failed: test: b' }, cRan: false },
  { title: '3. onfail on a target whose require failed: fires', states: [{ id: 'x', fn: 'test.fail' }, { id: 'b', fn: 'test.succeed_with_changes', req: { require: ['x'] } }, { id: 'c', fn: 'test.succeed_with_changes', req: { onfail: ['b'] } }], c: RAN, cRan: true },
  // 4. one target failed, another changed: the failure wins (onchanges is not onchanges_any)
  { title: '4. onchanges [failed, changed]: failed requisite, naming the failed one', states: [{ id: 'b1', fn: 'test.fail' }, { id: 'b2', fn: 'test.succeed_with_changes' }, { id: 'c', fn: 'test.succeed_with_changes', req: { onchanges: ['b1', 'b2'] } }], c: { result: false, changes: {}, comment: 'One or more requisite failed: test: b1' }, cRan: false },
  { title: '4. watch [failed, changed]: failed requisite', states: [{ id: 'b1', fn: 'test.fail' }, { id: 'b2', fn: 'test.succeed_with_changes' }, { id: 'c', fn: 'test.succeed_with_changes', req: { watch: ['b1', 'b2'] } }], c: { result: false, changes: {}, comment: 'One or more requisite failed: test: b1' }, cRan: false },
  { title: '4. onfail [failed, succeeded]: fires (any one failed)', states: [{ id: 'b1', fn: 'test.fail' }, { id: 'b2', fn: 'test.succeed_with_changes' }, { id: 'c', fn: 'test.succeed_with_changes', req: { onfail: ['b1', 'b2'] } }], c: RAN, cRan: true },
];

describe('runPlan: what depends on a failed or unrun target (Salt)', () => {
  it.each(cascadeRows)('$title', async (row) => {
    const h = harness(STOP_FAILS);
    const { results } = await h.run(plan(...row.states));
    expect(byId(results).c).toEqual(row.c);
    expect(h.log.some((l) => l.endsWith(':apply:c'))).toBe(row.cRan);
  });

  it('the unrun prereq target reports its check (null, no changes) and the failure is counted once, on the preparing state', async () => {
    const h = harness(STOP_FAILS);
    const { results } = await h.run(plan(...stopThenConf));
    expect(byId(results)).toEqual({
      stop: { result: false, changes: { retcode: 1 }, comment: 'Command "systemctl stop app" run' },
      conf: { result: null, changes: {}, comment: 'File /etc/app.conf would be updated; not run because cmd: stop failed (its prereq)' },
    });
    expect(h.transport.calls.filter((c) => c.op === 'writeFile')).toEqual([]);
  });

  it('a target in sync, prepared for another target that would change, reports true (Salt: its test run)', async () => {
    const h = harness({ ...STOP_FAILS, files: { '/etc/app.conf': 'new', '/etc/app.env': 'old' } });
    const { results } = await h.run(
      plan(
        { id: 'stop', fn: 'cmd.run', name: 'systemctl stop app', req: { prereq: ['conf', 'env'] } },
        { id: 'conf', fn: 'file.managed', name: '/etc/app.conf', args: { content: 'new' } },
        { id: 'env', fn: 'file.managed', name: '/etc/app.env', args: { content: 'new' } },
      ),
    );
    expect(byId(results).conf).toEqual({ result: true, changes: {}, comment: 'File /etc/app.conf is in the correct state; not run because cmd: stop failed (its prereq)' });
    expect(byId(results).env).toEqual({ result: null, changes: {}, comment: 'File /etc/app.env would be updated; not run because cmd: stop failed (its prereq)' });
  });
});

describe('runPlan: watch triggers the watch action only when the watched state changed', () => {
  const watchPlan = (content: string): CompiledPlan =>
    plan({ id: 'conf', fn: 'file.managed', name: '/etc/slurm/slurm.conf', args: { content } }, { id: 'slurmd', fn: 'service.running', req: { watch: ['conf'] } });
  const node = (running: boolean, conf: string): FakeTransportOptions => ({
    files: { '/etc/slurm/slurm.conf': conf },
    handler: (cmd) => (cmd.startsWith('systemctl is-active') ? { code: running ? 0 : 3, stdout: '', stderr: '' } : undefined),
  });

  it('config changed, service running: restarts it and reports the restart', async () => {
    const h = harness(node(true, 'old'));
    const { results } = await h.run(watchPlan('new'));
    expect(byId(results).slurmd).toEqual({
      result: true,
      changes: { slurmd: 'restarted' },
      comment: 'The service slurmd is already running; watch action (file: conf changed): Service restarted',
    });
    expect(h.transport.commands).toEqual(['systemctl is-active slurmd', 'systemctl restart slurmd']);
  });

  it('config unchanged: no restart', async () => {
    const h = harness(node(true, 'same'));
    const { results } = await h.run(watchPlan('same'));
    expect(byId(results).slurmd).toEqual({ result: true, changes: {}, comment: 'The service slurmd is already running' });
    expect(h.transport.commands).toEqual(['systemctl is-active slurmd']);
    expect(h.log).not.toContain('service.running:watch:slurmd');
  });

  it('config changed, service stopped: starts it and does not restart it again (Salt)', async () => {
    const h = harness(node(false, 'old'));
    const { results } = await h.run(watchPlan('new'));
    expect(byId(results).slurmd).toEqual({ result: true, changes: { slurmd: true }, comment: 'Started service slurmd' });
    expect(h.transport.commands).toEqual(['systemctl is-active slurmd', 'systemctl start slurmd']);
  });

  it('test mode: reports that the watch action would run, result null, and restarts nothing', async () => {
    const h = harness(node(true, 'old'));
    const { results } = await h.run(watchPlan('new'), { test: true });
    expect(byId(results).slurmd).toEqual({
      result: null,
      changes: {},
      comment: 'The service slurmd is already running; watch action would run because file: conf changed',
    });
    expect(h.transport.commands).toEqual(['systemctl is-active slurmd']);
  });

  it('test mode, config in sync: the service is simply in sync', async () => {
    const h = harness(node(true, 'same'));
    const { results } = await h.run(watchPlan('same'), { test: true });
    expect(byId(results).slurmd?.result).toBe(true);
  });
});

describe('runPlan: unless / onlyif / creates', () => {
  const exitCodes = (codes: Record<string, number>): FakeTransportOptions => ({
    files: { '/opt/present': 'x', '/opt/also present': 'y' },
    handler: (cmd, t) => {
      const testE = /^test -e '(.*)'$/.exec(cmd);
      if (testE) return { code: t.files.has(testE[1] ?? '') ? 0 : 1, stdout: '', stderr: '' };
      const code = codes[cmd];
      return code === undefined ? undefined : { code, stdout: '', stderr: '' };
    },
  });

  const rows: Array<{ title: string; spec: Partial<StateSpec>; runs: boolean; comment?: string }> = [
    { title: 'unless: every command exits 0 -> skipped', spec: { unless: ['yes', 'yes'] }, runs: false, comment: 'unless condition is true: yes; yes' },
    // Salt's rule (a NAND): one failing command is enough to run, whichever place it has.
    { title: 'unless: the first command fails -> runs', spec: { unless: ['no', 'yes'] }, runs: true },
    { title: 'unless: a later command fails -> runs', spec: { unless: ['yes', 'no'] }, runs: true },
    { title: 'unless: every command fails -> runs', spec: { unless: ['no'] }, runs: true },
    { title: 'onlyif: every command exits 0 -> runs', spec: { onlyif: ['yes', 'yes'] }, runs: true },
    { title: 'onlyif: a command fails -> skipped', spec: { onlyif: ['yes', 'no'] }, runs: false, comment: 'onlyif condition is false: no' },
    { title: 'creates: every path exists -> skipped', spec: { creates: ['/opt/present', '/opt/also present'] }, runs: false, comment: 'All files in creates exist: /opt/present, /opt/also present' },
    { title: 'creates: a path is missing -> runs', spec: { creates: ['/opt/present', '/opt/missing'] }, runs: true },
  ];

  it.each(rows)('$title', async ({ spec, runs, comment }) => {
    const h = harness(exitCodes({ yes: 0, no: 1 }));
    const { results } = await h.run(plan({ id: 'a', fn: 'test.succeed_with_changes', ...spec }));
    if (runs) expect(byId(results).a).toEqual({ result: true, changes: CHANGES, comment: 'Success!' });
    else expect(byId(results).a).toEqual({ result: true, changes: {}, comment });
    expect(h.log.includes('test.succeed_with_changes:apply:a')).toBe(runs);
  });

  it('runs each condition command with the run timeout, and quotes creates paths', async () => {
    const h = harness(exitCodes({ yes: 0, no: 1 }));
    await h.run(plan({ id: 'a', fn: 'test.nop', onlyif: ['yes'], unless: ['no'], creates: ["/opt/it's here"] }));
    expect(h.transport.commands).toEqual(['yes', 'no', `test -e '/opt/it'\\''s here'`]);
    expect(h.transport.timeouts).toEqual([5_000, 5_000, 5_000]);
  });

  it('conditions are evaluated in test mode too', async () => {
    const h = harness(exitCodes({ yes: 0 }));
    const { results } = await h.run(plan({ id: 'a', fn: 'test.succeed_with_changes', unless: ['yes'] }), { test: true });
    expect(byId(results).a).toEqual({ result: true, changes: {}, comment: 'unless condition is true: yes' });
  });
});

describe('runPlan: retry', () => {
  const flaky = (failures: number): FakeTransportOptions => {
    let calls = 0;
    return { handler: (cmd) => (cmd === 'fetch-firmware' ? { code: ++calls <= failures ? 1 : 0, stdout: '', stderr: '' } : undefined) };
  };
  const retryPlan = (attempts: number): CompiledPlan => plan({ id: 'fw', fn: 'cmd.run', name: 'fetch-firmware', retry: { attempts, interval: 2, until: true } });

  it('retries until success on attempt 3, sleeping the interval between attempts', async () => {
    const h = harness(flaky(2));
    const { results } = await h.run(retryPlan(5));
    expect(results[0]?.result).toBe(true);
    expect(h.transport.commands).toEqual(['fetch-firmware', 'fetch-firmware', 'fetch-firmware']);
    expect(h.sleeps).toEqual([2000, 2000]);
    expect(results[0]?.comment.split('\n')).toEqual([
      'Attempt 1: returned a result of false, with the comment: Command "fetch-firmware" run',
      'Attempt 2: returned a result of false, with the comment: Command "fetch-firmware" run',
      'Attempt 3: Command "fetch-firmware" run',
    ]);
  });

  it('gives up after the last attempt with the last result', async () => {
    const h = harness(flaky(10));
    const { results } = await h.run(retryPlan(3));
    expect(results[0]?.result).toBe(false);
    expect(h.transport.commands).toHaveLength(3);
    expect(h.sleeps).toEqual([2000, 2000]);
  });

  it('checks unless again before each retry (Salt): a command that did its work but failed is not run again', async () => {
    let joined = false;
    const h = harness({
      handler: (cmd) => {
        if (cmd.includes('is-member')) return { code: joined ? 0 : 1, stdout: '', stderr: '' };
        if (cmd.includes('join-cluster')) {
          const first = !joined;
          joined = true;
          return { code: first ? 1 : 2, stdout: '', stderr: first ? 'joined, then timed out waiting' : 'already a member' };
        }
        return undefined;
      },
    });
    const { results } = await h.run(plan({ id: 'join', fn: 'cmd.run', name: 'join-cluster', unless: ['is-member'], retry: { attempts: 3, interval: 10, until: true } }));
    // Before: join-cluster ran three times and the state failed.
    expect(h.transport.commands.filter((c) => c.includes('join-cluster'))).toHaveLength(1);
    expect(results[0]?.result).toBe(true);
    expect(results[0]?.comment).toMatch(/Attempt 2: .*unless/);
  });

  it('does not retry in test mode', async () => {
    const h = harness(flaky(10));
    const { results } = await h.run(retryPlan(3), { test: true });
    expect(results[0]?.result).toBeNull();
    expect(h.sleeps).toEqual([]);
  });
});

describe('runPlan: failhard', () => {
  it('a failing failhard state fails every remaining state without running it', async () => {
    const h = harness();
    const { results, aborted } = await h.run(plan({ id: 'a', fn: 'test.nop' }, { id: 'b', fn: 'test.fail', failhard: true }, { id: 'c', fn: 'test.nop' }, { id: 'd', fn: 'test.succeed_with_changes' }));
    expect(results.map((r) => [r.id, r.result, r.comment])).toEqual([
      ['a', true, 'Success!'],
      ['b', false, 'Failure!'],
      ['c', false, FAILHARD_COMMENT],
      ['d', false, FAILHARD_COMMENT],
    ]);
    expect(h.log.filter((l) => l.endsWith(':c') || l.endsWith(':d'))).toEqual([]);
    expect(aborted).toEqual({ cause: 'failhard', reason: 'test_|-b_|-b_|-fail failed and failhard is set' });
  });

  it('a dry run goes on past a failhard failure (Salt): the rest of the node is still previewed', async () => {
    const h = harness();
    const { results, aborted } = await h.run(plan({ id: 'b', fn: 'test.throw', failhard: true }, { id: 'c', fn: 'test.succeed_with_changes' }), { test: true });
    expect(results.map((r) => r.result)).toEqual([false, null]);
    expect(results[1]?.comment).not.toBe(FAILHARD_COMMENT);
    expect(aborted).toBeUndefined();
  });

  it('RunOptions.failhard applies to every state', async () => {
    const h = harness();
    const { results } = await h.run(plan({ id: 'a', fn: 'test.throw' }, { id: 'b', fn: 'test.nop' }), { failhard: true });
    expect(results.map((r) => r.result)).toEqual([false, false]);
    expect(results[1]?.comment).toBe(FAILHARD_COMMENT);
  });

  it('a succeeding failhard state does not stop the run, nor does a failure without failhard', async () => {
    const h = harness();
    const { results, aborted } = await h.run(plan({ id: 'a', fn: 'test.nop', failhard: true }, { id: 'b', fn: 'test.fail' }, { id: 'c', fn: 'test.nop' }));
    expect(results.map((r) => r.result)).toEqual([true, false, true]);
    expect(aborted).toBeUndefined();
  });

  it('test mode: a predicted change (null) is not a failure', async () => {
    const h = harness();
    const { results } = await h.run(plan({ id: 'a', fn: 'test.fail', failhard: true }, { id: 'b', fn: 'test.nop' }), { test: true });
    expect(results.map((r) => r.result)).toEqual([null, true]);
  });
});

describe('runPlan: connection loss and timeouts', () => {
  const files = (n: number): StateSpec[] => Array.from({ length: n }, (_, i) => ({ id: `f${i}`, fn: 'file.managed', name: `/etc/f${i}`, args: { content: `v${i}` } }));

  it('a dropped connection fails the state it happened in and every remaining state, naming the reason', async () => {
    // Each file state reads then writes: calls 1-2 are f0, call 3 is f1's read, call 4 (f1's write) drops.
    const h = harness({ dropAfterCalls: 3 });
    const specs = files(4);
    specs[1] = { ...specs[1]!, retry: { attempts: 3, interval: 1, until: true } };
    const { results, aborted } = await h.run(plan(...specs));
    expect(results.map((r) => [r.id, r.result, r.comment])).toEqual([
      ['f0', true, 'File /etc/f0 updated'],
      ['f1', false, 'Connection to gpu001 lost: gpu001: connection dropped'],
      ['f2', false, 'not run: connection to gpu001 lost: gpu001: connection dropped'],
      ['f3', false, 'not run: connection to gpu001 lost: gpu001: connection dropped'],
    ]);
    expect(aborted).toEqual({ cause: 'transport', reason: 'gpu001: connection dropped' });
    expect(h.sleeps).toEqual([]); // a dropped connection is not retried
    expect(h.log.filter((l) => l.endsWith(':f2') || l.endsWith(':f3'))).toEqual([]);
    expect(h.streamed).toHaveLength(4);
  });

  it('a connection dropped during an unless command aborts the node too', async () => {
    const h = harness({ dropAfterCalls: 0 });
    const { results, aborted } = await h.run(plan({ id: 'a', fn: 'test.nop', unless: ['true'] }, { id: 'b', fn: 'test.nop' }));
    expect(results.map((r) => r.result)).toEqual([false, false]);
    expect(aborted?.cause).toBe('transport');
  });

  it('a timed-out command fails that state naming the timeout and the command; the run goes on', async () => {
    const h = harness({
      handler: (cmd) => {
        if (cmd === 'sleep 600') throw new RackseedError('STATE_TIMEOUT', 'command timed out');
        return undefined;
      },
    });
    const { results, aborted } = await h.run(plan({ id: 'hang', fn: 'cmd.run', name: 'sleep 600' }, { id: 'after', fn: 'test.succeed_with_changes' }));
    expect(byId(results).hang).toEqual({ result: false, changes: {}, comment: 'Command timed out after 5000 ms: sleep 600' });
    expect(results[1]?.result).toBe(true);
    expect(aborted).toBeUndefined();
    // cmd.run passed no timeout of its own: the runner's transport gave it the run's.
    expect(h.transport.timeouts).toEqual([5_000]);
  });

  it('a timed-out unless command fails the state, naming the command', async () => {
    const h = harness({
      handler: (cmd) => {
        if (cmd === 'probe') throw new RackseedError('STATE_TIMEOUT', 'command timed out');
        return undefined;
      },
    });
    const { results } = await h.run(plan({ id: 'a', fn: 'test.nop', unless: ['probe'] }));
    expect(byId(results).a).toEqual({ result: false, changes: {}, comment: 'Command timed out after 5000 ms: probe' });
  });
});
