import { describe, expect, it } from 'vitest';

import { replaceBlock } from '../../server/state/modules/file-blockreplace.js';
import { builtinModules } from '../../server/state/modules/index.js';
import type { StateFunction } from '../../server/state/types.js';
import { context, fakeNode, state } from '../fixtures/state-modules/harness.js';

const fn = (name: string): StateFunction => builtinModules().get(name)!;
const STAT = /^printf 'target=%s\\nparent=%s\\n'/;
const statReply = (target: string, parent = 'directory') => ({ stdout: `target=${target}\nparent=${parent}\n` });

describe('file.managed', () => {
  const sshd = 'Port 22\nPermitRootLogin yes\nUsePAM yes\n';

  it('reads the file and its stat (one exec) and shows a golden unified diff plus attribute changes', async () => {
    const node = fakeNode([[STAT, statReply('regular file|644|root|root')]], { '/etc/ssh/sshd_config': sshd });
    const s = state('file.managed', '/etc/ssh/sshd_config', { contents: 'Port 22\nPermitRootLogin no\nUsePAM yes', mode: '0600', group: 'ssh' });
    const outcome = await fn('file.managed').check(s, context(node));
    expect(node.calls.map((c) => c.op)).toEqual(['readFile', 'exec']);
    expect(node.commands[0]).toBe(
      `printf 'target=%s\\nparent=%s\\n' "$(stat -L -c '%F|%a|%U|%G' -- '/etc/ssh/sshd_config' 2>/dev/null || echo missing)" "$(stat -L -c '%F' -- '/etc/ssh' 2>/dev/null || echo missing)"`,
    );
    expect(outcome).toEqual({
      inSync: false,
      changes: {
        diff: '--- /etc/ssh/sshd_config\n+++ /etc/ssh/sshd_config\n@@ -1,3 +1,3 @@\n Port 22\n-PermitRootLogin yes\n+PermitRootLogin no\n UsePAM yes\n',
        mode: '0600',
        group: 'ssh',
      },
      comment: 'File /etc/ssh/sshd_config would be updated',
    });
  });

  it('is in sync when bytes and attributes match (mode given as the YAML integer 644)', async () => {
    const node = fakeNode([[STAT, statReply('regular file|644|root|root')]], { '/etc/motd': 'hello\n' });
    const outcome = await fn('file.managed').check(state('file.managed', '/etc/motd', { contents: 'hello', mode: 644, user: 'root' }), context(node));
    expect(outcome.inSync).toBe(true);
  });

  it('writes atomically through the transport, keeping the old mode and owner when the state sets none', async () => {
    const node = fakeNode([[STAT, statReply('regular file|640|root|slurm')]], { '/etc/slurm/slurm.conf': 'old\n' });
    const s = state('file.managed', '/etc/slurm/slurm.conf', { source: 'rackseed://slurm/slurm.conf.njk', template: 'nunjucks' });
    const ctx = context(node, { sources: { 'rackseed://slurm/slurm.conf.njk': 'NodeName={{ node }}\n' } });
    const checked = await fn('file.managed').check(s, ctx);
    const outcome = await fn('file.managed').apply(s, ctx, checked);
    expect(node.calls.at(-1)).toEqual({ op: 'writeFile', path: '/etc/slurm/slurm.conf', data: 'NodeName=node1\n', options: { mode: '0640', owner: 'root', group: 'slurm' } });
    expect(outcome).toMatchObject({ result: true, comment: 'File /etc/slurm/slurm.conf updated' });
    expect(outcome.changes.diff).toContain('+NodeName=node1');
    // The same file checked again is in sync.
    node.setHandler((c) => (STAT.test(c) ? { code: 0, ...statReply('regular file|640|root|slurm'), stderr: '' } : undefined));
    expect((await fn('file.managed').check(s, ctx)).inSync).toBe(true);
  });

  it('only chmods and chowns when the content is already right', async () => {
    const node = fakeNode([[STAT, statReply('regular file|644|root|root')]], { '/etc/x': 'x\n' });
    const s = state('file.managed', '/etc/x', { contents: 'x', mode: '0400', user: 'svc;reboot$(id)', group: 'svc' });
    const ctx = context(node);
    const outcome = await fn('file.managed').apply(s, ctx, await fn('file.managed').check(s, ctx));
    // chown first: it clears setuid/setgid, which a chmod before it would lose.
    expect(node.commands.at(-1)).toBe("chown 'svc;reboot$(id):svc' -- '/etc/x' && chmod '00400' -- '/etc/x'");
    expect(outcome.changes).toEqual({ mode: '0400', user: 'svc;reboot$(id)', group: 'svc' });
  });

  it('a setuid mode survives an owner change: the mode goes on after chown, also when it was already right', async () => {
    for (const [have, changes] of [
      ['regular file|755|root|root', { mode: '4755', user: 'nobody' }],
      ['regular file|4755|root|root', { user: 'nobody' }],
    ] as const) {
      const node = fakeNode([[STAT, statReply(have)]], { '/usr/local/bin/tool': 'x\n' });
      const s = state('file.managed', '/usr/local/bin/tool', { contents: 'x', mode: '4755', user: 'nobody' });
      const ctx = context(node);
      const outcome = await fn('file.managed').apply(s, ctx, await fn('file.managed').check(s, ctx));
      expect(outcome.changes).toEqual(changes);
      expect(node.commands.at(-1)).toBe("chown 'nobody' -- '/usr/local/bin/tool' && chmod '04755' -- '/usr/local/bin/tool'");
    }
  });

  it('hides the diff of secrets with show_changes: false (nothing of the key in changes or comment)', async () => {
    const secret = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n';
    const node = fakeNode([[STAT, statReply('regular file|600|root|root')]], { '/root/.ssh/id_ed25519': 'old-key\n' });
    const s = state('file.managed', '/root/.ssh/id_ed25519', { contents: secret, mode: '0600', show_changes: false });
    const ctx = context(node);
    const checked = await fn('file.managed').check(s, ctx);
    const outcome = await fn('file.managed').apply(s, ctx, checked);
    for (const o of [checked, outcome]) {
      expect(o.changes).toEqual({ diff: '<show_changes=False>' });
      expect(JSON.stringify(o)).not.toContain('b3BlbnNzaC1rZXktdjEAAAA');
      expect(JSON.stringify(o)).not.toContain('old-key');
    }
  });

  it('reports a new file as Salt does, and needs makedirs for a missing directory', async () => {
    const node = fakeNode([[STAT, statReply('missing', 'missing')]]);
    const s = state('file.managed', '/etc/new/app.conf', { contents: 'a=1', mode: '0644' });
    const ctx = context(node);
    const checked = await fn('file.managed').check(s, ctx);
    expect(checked.changes).toEqual({ diff: 'New file', mode: '0644' });
    expect(checked.comment).toContain('set makedirs: true');
    expect((await fn('file.managed').apply(s, ctx, checked)).result).toBe(false);

    const withDirs = state('file.managed', '/etc/new/app.conf', { contents: 'a=1', makedirs: true });
    const applied = await fn('file.managed').apply(withDirs, ctx, await fn('file.managed').check(withDirs, ctx));
    expect(applied.result).toBe(true);
    expect(node.commands.at(-1)).toBe("mkdir -p -- '/etc/new'");
    expect(node.files.get('/etc/new/app.conf')?.data.toString()).toBe('a=1\n');
  });

  it('compares bytes, so a binary file differs and is reported without a text diff', async () => {
    const node = fakeNode([[STAT, statReply('regular file|644|root|root')]]);
    node.files.set('/etc/blob', { data: Buffer.from([0, 1, 2, 0xff]), options: {} });
    const outcome = await fn('file.managed').check(state('file.managed', '/etc/blob', { contents: 'text' }), context(node));
    expect(outcome.changes).toEqual({ diff: 'Replace binary file' });
  });

  it('refuses to manage a directory and rejects a relative path or contents with source', async () => {
    const node = fakeNode([[STAT, statReply('directory|755|root|root')]]);
    await expect(fn('file.managed').check(state('file.managed', '/etc', { contents: 'x' }), context(node))).rejects.toThrow(/is a directory/);
    await expect(fn('file.managed').check(state('file.managed', 'etc/x', {}), context(node))).rejects.toThrow(/name: expected an absolute path/);
    expect(fn('file.managed').validate!({ contents: 'x', source: 'rackseed://x' })).toEqual(['contents: not allowed together with source']);
    expect(fn('file.managed').validate!({ mode: 'rw-r--r--' })).toEqual(['mode: expected an octal mode such as 0644']);
    expect(fn('file.managed').validate!({ contnets: 'x' })[0]).toMatch(/unknown key "contnets" \(did you mean "contents"\?/);
    // As in Salt, contents are not rendered again: pillar values pasted into them would run as template code.
    expect(fn('file.managed').validate!({ contents: 'Welcome to {{ x }}', template: 'nunjucks' })).toEqual([
      'template: applies to a source file, not to contents (the SLS is already rendered; use a source: rackseed:// template)',
    ]);
    expect(fn('file.managed').validate!({ template: 'nunjucks' })).toEqual(['template: needs a source']);
    expect(fn('file.managed').validate!({ mode: '0o640' })).toEqual([]);
    expect(fn('file.managed').validate!({ mode: '0x1a0' })).toEqual(['mode: expected an octal mode such as 0644']);
  });
});

describe('file.directory, file.absent, file.symlink', () => {
  it('creates a directory with mode and owner in one command', async () => {
    const node = fakeNode([[STAT, statReply('missing')]]);
    const s = state('file.directory', '/srv/data dir', { mode: '0750', user: 'slurm', makedirs: true });
    const ctx = context(node);
    const checked = await fn('file.directory').check(s, ctx);
    expect(checked.changes).toEqual({ '/srv/data dir': 'New Dir', mode: '0750', user: 'slurm' });
    await fn('file.directory').apply(s, ctx, checked);
    expect(node.commands.at(-1)).toBe("mkdir -p -- '/srv/data dir' && chown 'slurm' -- '/srv/data dir' && chmod '00750' -- '/srv/data dir'");
  });

  it('fixes only the mode of an existing directory, and refuses a file in the way', async () => {
    const node = fakeNode([[STAT, statReply('directory|755|root|root')]]);
    const s = state('file.directory', '/srv', { mode: '0700' });
    const ctx = context(node);
    const checked = await fn('file.directory').check(s, ctx);
    expect(checked.changes).toEqual({ mode: '0700' });
    await fn('file.directory').apply(s, ctx, checked);
    expect(node.commands.at(-1)).toBe("chmod '00700' -- '/srv'");
    const file = fakeNode([[STAT, statReply('regular file|644|root|root')]]);
    await expect(fn('file.directory').check(s, context(file))).rejects.toThrow(/not a directory/);
  });

  it('removes with rm -rf -- (quoted) and never removes /', async () => {
    const node = fakeNode([[STAT, statReply('regular file|644|root|root')]]);
    const s = state('file.absent', "/tmp/x'; reboot; '");
    const ctx = context(node);
    expect(node.commands).toEqual([]);
    const checked = await fn('file.absent').check(s, ctx);
    expect(node.commands[0]).toContain("stat -c '%F|%a|%U|%G' -- '/tmp/x'\\''; reboot; '\\'''");
    await fn('file.absent').apply(s, ctx, checked);
    expect(node.commands.at(-1)).toBe("rm -rf -- '/tmp/x'\\''; reboot; '\\'''");
    await expect(fn('file.absent').check(state('file.absent', '/'), ctx)).rejects.toThrow(/refusing to remove/);
    // A templated `{{ prefix }}/etc` with prefix `/`: still /etc.
    for (const name of ['//etc', '/usr//', '///', '/./etc', '/var/../etc', '/tmp/../../boot']) await expect(fn('file.absent').check(state('file.absent', name), ctx)).rejects.toThrow(/refusing to remove/);
    expect((await fn('file.absent').check(state('file.absent', '/gone'), context(fakeNode([[STAT, statReply('missing')]])))).inSync).toBe(true);
  });

  it('checks a symlink with stat and readlink, and replaces it with ln -sfn', async () => {
    const node = fakeNode([[/^printf 'kind=/, { stdout: 'kind=symbolic link\nlink=/opt/app-1.0\nparent=directory\n' }]]);
    const ok = await fn('file.symlink').check(state('file.symlink', '/opt/app', { target: '/opt/app-1.0' }), context(node));
    expect(ok.inSync).toBe(true);
    const s = state('file.symlink', '/opt/app', { target: '/opt/app-2.0' });
    const checked = await fn('file.symlink').check(s, context(node));
    expect(checked.changes).toEqual({ new: '/opt/app-2.0', old: '/opt/app-1.0' });
    await fn('file.symlink').apply(s, context(node), checked);
    expect(node.commands.at(-1)).toBe("ln -sfn -- '/opt/app-2.0' '/opt/app'");
    const file = fakeNode([[/^printf 'kind=/, { stdout: 'kind=regular file\nlink=\nparent=directory\n' }]]);
    await expect(fn('file.symlink').check(s, context(file))).rejects.toThrow(/set force: true/);
    expect(fn('file.symlink').validate!({})).toEqual(['target: missing (expected string)']);
  });
});

describe('file.blockreplace', () => {
  const base = { markerStart: '# BEGIN rackseed', markerEnd: '# END rackseed', content: 'a\nb', append: false, prepend: false };

  it.each([
    ['replaces between markers', 'x\n# BEGIN rackseed -- managed\nold\n# END rackseed\ny\n', base, 'x\n# BEGIN rackseed -- managed\na\nb\n# END rackseed\ny\n'],
    ['appends when asked', 'x\n', { ...base, append: true }, 'x\n# BEGIN rackseed\na\nb\n# END rackseed\n'],
    ['prepends when asked', 'x\n', { ...base, prepend: true }, '# BEGIN rackseed\na\nb\n# END rackseed\nx\n'],
    ['empties a block', '# BEGIN rackseed\nold\n# END rackseed\n', { ...base, content: '' }, '# BEGIN rackseed\n# END rackseed\n'],
  ])('%s', (_, text, options, expected) => {
    expect(replaceBlock(text, options)).toEqual({ text: expected });
  });

  it('fails on missing or unbalanced markers', () => {
    expect(replaceBlock('x\n', base)).toMatchObject({ error: expect.stringContaining('not found') });
    expect(replaceBlock('# BEGIN rackseed\nx\n', base)).toMatchObject({ error: expect.stringContaining('no end marker') });
  });

  it('diffs and writes only the block, keeping the file mode and owner', async () => {
    const hosts = '127.0.0.1 localhost\n#-- start managed zone --\n10.0.0.1 old\n#-- end managed zone --\n';
    const node = fakeNode([[STAT, statReply('regular file|644|root|root')]], { '/etc/hosts': hosts });
    const s = state('file.blockreplace', '/etc/hosts', { content: '10.0.0.1 node1\n10.0.0.2 node2' });
    const ctx = context(node);
    const checked = await fn('file.blockreplace').check(s, ctx);
    expect(checked.changes.diff).toBe(
      '--- /etc/hosts\n+++ /etc/hosts\n@@ -1,4 +1,5 @@\n 127.0.0.1 localhost\n #-- start managed zone --\n-10.0.0.1 old\n+10.0.0.1 node1\n+10.0.0.2 node2\n #-- end managed zone --\n',
    );
    await fn('file.blockreplace').apply(s, ctx, checked);
    expect(node.calls.at(-1)).toMatchObject({ op: 'writeFile', path: '/etc/hosts', options: { mode: '0644', owner: 'root', group: 'root' } });
    expect((await fn('file.blockreplace').check(s, ctx)).inSync).toBe(true);
  });
});
