import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStore } from '../../server/store/index.js';
import type { ObservedStore } from '../../server/store/types.js';
import type { Netns } from './netns.js';
import { TSX_IMPORT } from './tsx.js';

const CLI = path.resolve(import.meta.dirname, '../../server/cli/main.ts');

export interface RackseedProcess {
  dir: string;
  child: ChildProcess;
  /** Everything the server logged (JSON lines). */
  log(): string;
  /** Calls the admin API from inside the namespace (curl), returning parsed JSON. */
  api<T>(apiPath: string): T;
  /** POSTs to the admin API (no body) from inside the namespace, returning parsed JSON. */
  post<T = unknown>(apiPath: string): T;
  /** Opens the server's SQLite store from the test process (WAL allows a concurrent reader). */
  openStore(): Promise<ObservedStore>;
  stop(): Promise<void>;
  /** SIGKILL, as a power cut would, without cleanup. */
  kill9(): Promise<void>;
  /** Starts the server again on the same data directory. */
  restart(): Promise<void>;
}

export interface RackseedProcessOptions {
  netns: Netns;
  ns: string;
  /** The address the HTTP API listens on inside the namespace. */
  httpAddress: string;
  /** Extra YAML appended to the generated config (dhcp:, tftp:, ...). */
  config: string;
  inventory: string;
  extraFiles?: Record<string, string>;
  /** Log lines to wait for besides "HTTP listening" (e.g. /DHCP listening/). */
  waitFor?: RegExp[];
  /** Extra arguments for node itself, before the script (e.g. `--cpu-prof` for a benchmark's profile). */
  nodeArgs?: string[];
  /** Server log level; tests read debug lines, benchmarks run at info as production does. */
  logLevel?: 'debug' | 'info' | 'warn';
}

/**
 * A real rackseed process inside a test namespace, started through the CLI exactly as an operator would
 * (`rackseed serve --config`), because DHCP must bind UDP 67 inside that namespace.
 */
export async function startRackseedProcess(opts: RackseedProcessOptions): Promise<RackseedProcess> {
  const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-ns-'));
  // The data directory holds images (hundreds of MB in the fanout bench): it goes with the process when a run is
  // interrupted too (Netns exits the process on SIGINT/SIGTERM), not only through stop().
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  const configFile = path.join(dir, 'rackseed.yaml');
  writeFileSync(path.join(dir, 'inventory.yaml'), opts.inventory);
  for (const [name, text] of Object.entries(opts.extraFiles ?? {})) writeFileSync(path.join(dir, name), text);
  writeFileSync(configFile, `http:\n  listen: ${opts.httpAddress}\n  port: 8080\nlog:\n  level: ${opts.logLevel ?? 'debug'}\n${opts.config}\n`);
  let output = '';
  let child!: ChildProcess;

  const start = async () => {
    child = opts.netns.spawn(opts.ns, process.execPath, [...(opts.nodeArgs ?? []), '--import', TSX_IMPORT, CLI, 'serve', '--config', configFile], { cwd: dir });
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 30_000;
    const ready = [/"msg":"HTTP listening"/, ...(opts.waitFor ?? [])];
    while (!ready.every((r) => r.test(output))) {
      if (child.exitCode !== null) throw new Error(`rackseed exited with ${child.exitCode}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`rackseed did not start within 30 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  try {
    await start();
  } catch (e) {
    await opts.netns.stop(child).catch(() => undefined);
    process.removeListener('exit', removeDir);
    removeDir();
    throw e;
  }

  const token = () => readFileSync(path.join(dir, 'data', 'admin-token'), 'utf8').trim();
  return {
    dir,
    get child() {
      return child;
    },
    log: () => output,
    api<T>(apiPath: string): T {
      const r = opts.netns.run(opts.ns, 'curl', ['-sf', '-H', `Authorization: Bearer ${token()}`, `http://${opts.httpAddress}:8080/api/v1${apiPath}`]);
      if (r.status !== 0) throw new Error(`GET ${apiPath} failed (${r.status}): ${r.stderr}`);
      return JSON.parse(r.stdout) as T;
    },
    post<T = unknown>(apiPath: string): T {
      const r = opts.netns.run(opts.ns, 'curl', ['-sf', '-X', 'POST', '-H', `Authorization: Bearer ${token()}`, `http://${opts.httpAddress}:8080/api/v1${apiPath}`]);
      if (r.status !== 0) throw new Error(`POST ${apiPath} failed (${r.status}): ${r.stderr}`);
      return JSON.parse(r.stdout) as T;
    },
    openStore: () => openStore({ kind: 'sqlite', path: path.join(dir, 'data', 'rackseed.db') }),
    async stop() {
      await opts.netns.stop(child);
      process.removeListener('exit', removeDir);
      removeDir();
    },
    async kill9() {
      await opts.netns.stop(child, 'SIGKILL');
    },
    async restart() {
      output = '';
      await start();
    },
  };
}
