import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { TSX_IMPORT } from '../support/tsx.js';
import { waitFor } from '../support/wait.js';

/**
 * `rackseed serve` as an operator starts it, on loopback with TFTP and DHCP off unless a test says otherwise: what it
 * says when it cannot start, and a SIGHUP that arrives while it starts.
 */
const CLI = path.resolve(import.meta.dirname, '../../server/cli/main.ts');
const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-serve-startup-'));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const INVENTORY = 'cluster: { name: t }\ngroups:\n  g: {}\nnodes:\n  - { name: n1, mac: "02:00:00:00:00:01", group: g }\n';

function configFile(name: string, yaml: string): string {
  const sub = path.join(dir, name);
  rmSync(sub, { recursive: true, force: true });
  writeFileSync(path.join(dir, `${name}.inventory.yaml`), INVENTORY);
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, `data_dir: ./${name}\ninventory: ./${name}.inventory.yaml\nlog:\n  level: info\n${yaml}`);
  return file;
}

function serve(file: string): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', TSX_IMPORT, CLI, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  return { child, output: () => output, exit };
}

describe('rackseed serve: starting', () => {
  it('a taken HTTP port is named by its keys and its cause, not a TypeError', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const file = configFile('taken', `http:\n  listen: 127.0.0.1\n  port: ${port}\ntftp:\n  enabled: false\n`);
      const s = serve(file);
      expect(await s.exit).toBe(1);
      expect(s.output()).toContain(`rackseed: ${file} http.listen/http.port: cannot listen on 127.0.0.1:${port} (EADDRINUSE): another program has that port\n`);
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it('a taken TFTP port is named the same way', async () => {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const port = udp.address().port;
    try {
      const file = configFile('tftptaken', `http:\n  listen: 127.0.0.1\n  port: 0\ntftp:\n  listen: 127.0.0.1\n  port: ${port}\n`);
      const s = serve(file);
      expect(await s.exit).toBe(1);
      expect(s.output()).toContain(`rackseed: ${file} tftp.listen/tftp.port: cannot listen on 127.0.0.1:${port} (EADDRINUSE): another program has that port\n`);
    } finally {
      udp.close();
    }
  });

  it('a missing tftp.root is named before anything starts', async () => {
    const file = configFile('noroot', `http:\n  listen: 127.0.0.1\n  port: 0\ntftp:\n  listen: 127.0.0.1\n  port: 0\n  root: /nonexistent-ipxe\n`);
    const s = serve(file);
    expect(await s.exit).toBe(1);
    expect(s.output()).toMatch(new RegExp(`rackseed: ${file.replaceAll('.', '\\.')} tftp\\.root: /nonexistent-ipxe does not exist \\(it holds the iPXE binaries`));
    expect(s.output()).not.toContain('HTTP listening');
  });

  it('a tftp.root without the iPXE loaders (Debian\'s ipxe-qemu alone makes /usr/lib/ipxe) is named before anything starts', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'rackseed-ipxe-qemu-only-'));
    try {
      mkdirSync(path.join(root, 'qemu'));
      const file = configFile('noloaders', `http:\n  listen: 127.0.0.1\n  port: 0\ntftp:\n  listen: 127.0.0.1\n  port: 0\n  root: ${root}\n`);
      const s = serve(file);
      expect(await s.exit).toBe(1);
      expect(s.output()).toContain(`rackseed: ${file} tftp.root: ${root} has none of undionly.kpxe, snponly.efi, ipxe.efi (the iPXE loaders machines fetch first`);
      expect(s.output()).not.toContain('HTTP listening');
      // A UEFI-only site whose groups use ipxe.efi may keep only that: it starts, warning about the others (it was
      // refused).
      writeFileSync(path.join(root, 'ipxe.efi'), 'not really ipxe');
      const only = serve(configFile('ipxeonly', `http:\n  listen: 127.0.0.1\n  port: 0\ntftp:\n  listen: 127.0.0.1\n  port: 0\n  root: ${root}\n`));
      await waitFor('the server to listen', () => only.output().includes('HTTP listening'), 60_000, 50);
      expect(only.output()).toMatch(/tftp\.root lacks an iPXE loader/);
      only.child.kill('SIGTERM');
      await only.exit;
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a SIGHUP while the server starts is held and carried out once it runs, instead of ending it', async () => {
    const file = configFile('hup', `http:\n  listen: 127.0.0.1\n  port: 0\ntftp:\n  enabled: false\n`);
    const s = serve(file);
    // The admin token is made (and printed) at the very start of startServer, before the store and listeners.
    await waitFor('the admin token line', () => s.output().includes('admin token created'), 60_000, 20);
    s.child.kill('SIGHUP');
    await waitFor('the server running, then reloading', () => s.output().includes('inventory reloaded on SIGHUP') || s.child.exitCode !== null, 60_000, 50);
    expect(s.child.exitCode).toBeNull();
    expect(s.output()).toContain('rackseed is running');
    s.child.kill('SIGTERM');
    expect(await s.exit).toBe(0);
  });
});
