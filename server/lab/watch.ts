import type { NodeView } from '../services/node-view.js';
import type { LabMachine } from './plan.js';

/**
 * Follows a lab from the outside, through the server's admin API, as an operator at the dashboard would: prints a
 * line whenever a machine's lifecycle state (or its install stage) changes, and gives compute nodes that failed
 * their readiness before the Slurm controller was up another check once it is.
 */

export interface LabApi {
  get<T>(apiPath: string): Promise<T>;
  post(apiPath: string, body: unknown): Promise<string>;
}

export function labApi(url: string, token: string): LabApi {
  const headers = { authorization: `Bearer ${token}` };
  return {
    async get<T>(apiPath: string): Promise<T> {
      const res = await fetch(`${url}/api/v1${apiPath}`, { headers, signal: AbortSignal.timeout(15_000) });
      if (!res.ok) throw new Error(`GET ${apiPath}: HTTP ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    },
    async post(apiPath: string, body: unknown): Promise<string> {
      const res = await fetch(`${url}/api/v1${apiPath}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(600_000),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`POST ${apiPath}: HTTP ${res.status} ${text}`);
      return text;
    },
  };
}

/** What a machine is doing, in words, from its node view. */
export function describeNode(v: Pick<NodeView, 'state' | 'stage' | 'reason'>): string {
  switch (v.state) {
    case 'unknown':
      return 'waiting for its first network boot';
    case 'discovered':
    case 'assigned':
      return `${v.state}: network booting`;
    case 'provisioning':
      return v.stage ? `installing (${v.stage})` : 'installing';
    case 'installed':
      return 'installed: rebooting into its own system';
    case 'configuring':
      return 'configuring: applying its roles, then checking readiness';
    case 'ready':
      return 'ready';
    case 'failed':
      return `failed${v.stage ? ` at ${v.stage}` : ''}: ${v.reason ?? 'no reason recorded'}`;
    case 'wiping':
      return v.stage ? `wiping its disks (${v.stage})` : 'wiping its disks';
    case 'wiped':
      return 'wiped: its disks are erased';
  }
}

/** A compute node's readiness can only pass once slurmctld answers: its first check may come too early. */
const SLURM_RECHECKS = 6;
const RECHECK_SPACING_MS = 15_000;

export interface LabWatch {
  /** The latest view of every lab machine (by name). */
  latest(): Map<string, NodeView>;
  stop(): Promise<void>;
}

export function watchLab(api: LabApi, machines: readonly LabMachine[], say: (line: string) => void, everyMs = 2_000): LabWatch {
  const shown = new Map<string, string>();
  const latest = new Map<string, NodeView>();
  const rechecks = new Map<string, { count: number; at: number }>();
  const controller = machines.find((m) => m.group === 'head')?.name;
  let stopped = false;
  let lastError = '';

  const recheck = async (name: string): Promise<void> => {
    const r = rechecks.get(name) ?? { count: 0, at: 0 };
    if (r.count >= SLURM_RECHECKS || Date.now() - r.at < RECHECK_SPACING_MS) return;
    rechecks.set(name, { count: r.count + 1, at: Date.now() });
    say(`${name}: failed readiness before the Slurm controller was ready; checking it again (${r.count + 1}/${SLURM_RECHECKS})`);
    await api.post('/readiness/run', { targets: [name] });
  };

  const round = async (): Promise<void> => {
    const { nodes } = await api.get<{ nodes: NodeView[] }>('/nodes');
    for (const v of nodes) {
      if (!machines.some((m) => m.name === v.name)) continue;
      latest.set(v.name, v);
      const text = describeNode(v);
      if (shown.get(v.name) !== text) {
        shown.set(v.name, text);
        say(`${v.name}: ${text}`);
      }
    }
    const head = controller ? latest.get(controller) : undefined;
    if (head?.state !== 'ready') return;
    for (const m of machines) {
      const v = latest.get(m.name);
      if (m.group === 'compute' && v?.state === 'failed' && v.stage === 'readiness' && /slurm\./.test(v.reason ?? '')) await recheck(m.name);
    }
  };

  const loop = (async () => {
    while (!stopped) {
      try {
        await round();
        lastError = '';
      } catch (err) {
        // The server restarting or busy is not worth a line per round: say it once until it answers again.
        const msg = (err as Error).message;
        if (msg !== lastError) say(`(the lab server did not answer: ${msg})`);
        lastError = msg;
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();

  return {
    latest: () => new Map(latest),
    stop: async () => {
      stopped = true;
      // A readiness re-check may be under way; the lab is going down anyway, so it is not waited for long.
      await Promise.race([loop, new Promise((r) => setTimeout(r, 3_000).unref())]);
    },
  };
}
