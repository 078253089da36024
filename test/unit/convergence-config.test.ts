import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../server/config.js';

const env = { vars: {}, hostname: 'test' };

describe('the convergence section of rackseed.yaml', () => {
  it('defaults: on, a probe every 30 s, 10 attempts from 5 s up to 5 min, 8 nodes at once', () => {
    expect(parseConfig('', '/etc/rackseed/rackseed.yaml', env).convergence).toEqual({
      enabled: true,
      probeIntervalMs: 30_000,
      maxAttempts: 10,
      backoffBaseMs: 5_000,
      backoffMaxMs: 300_000,
      concurrency: 8,
    });
  });

  it('maps every key, in seconds, to milliseconds', () => {
    const text = 'convergence:\n  enabled: false\n  probe_interval_seconds: 10\n  max_attempts: 3\n  backoff_base_seconds: 2\n  backoff_max_seconds: 60\n  concurrency: 2\n';
    expect(parseConfig(text, 'r.yaml', env).convergence).toEqual({ enabled: false, probeIntervalMs: 10_000, maxAttempts: 3, backoffBaseMs: 2_000, backoffMaxMs: 60_000, concurrency: 2 });
  });

  it('refuses a cap below the base, unknown keys and nonsense values, naming the key', () => {
    expect(() => parseConfig('convergence:\n  backoff_base_seconds: 60\n  backoff_max_seconds: 30\n', 'r.yaml', env)).toThrow(/convergence\.backoff_max_seconds.*at least backoff_base_seconds \(60\)/);
    expect(() => parseConfig('convergence:\n  max_attempt: 3\n', 'r.yaml', env)).toThrow(/convergence.*max_attempt/);
    expect(() => parseConfig('convergence:\n  max_attempts: 0\n', 'r.yaml', env)).toThrow(/convergence\.max_attempts/);
    expect(() => parseConfig('convergence:\n  concurrency: 1.5\n', 'r.yaml', env)).toThrow(/convergence\.concurrency/);
  });
});

describe('the readiness and slurm sections of rackseed.yaml', () => {
  it('defaults: no periodic readiness, no Slurm drains', () => {
    const c = parseConfig('', '/etc/rackseed/rackseed.yaml', env);
    expect(c.readiness).toEqual({ intervalMs: 0 });
    expect(c.slurm).toEqual({ drainUnready: false, drainMaxPercent: 25 });
  });

  it('maps the keys, minutes to milliseconds', () => {
    const c = parseConfig('readiness:\n  interval_minutes: 15\nslurm:\n  drain_unready: true\n  drain_max_percent: 50\n', 'r.yaml', env);
    expect(c.readiness).toEqual({ intervalMs: 900_000 });
    expect(c.slurm).toEqual({ drainUnready: true, drainMaxPercent: 50 });
  });

  it('refuses nonsense, naming the key', () => {
    expect(() => parseConfig('readiness:\n  interval_minutes: -5\n', 'r.yaml', env)).toThrow(/readiness\.interval_minutes/);
    expect(() => parseConfig('slurm:\n  drain_unready: yes please\n', 'r.yaml', env)).toThrow(/slurm\.drain_unready/);
    expect(() => parseConfig('slurm:\n  drain: true\n', 'r.yaml', env)).toThrow(/slurm.*drain/);
    expect(() => parseConfig('slurm:\n  drain_max_percent: 0\n', 'r.yaml', env)).toThrow(/slurm\.drain_max_percent/);
    expect(() => parseConfig('slurm:\n  drain_max_percent: 101\n', 'r.yaml', env)).toThrow(/slurm\.drain_max_percent/);
    expect(() => parseConfig('slurm:\n  drain_max_percent: 12.5\n', 'r.yaml', env)).toThrow(/slurm\.drain_max_percent/);
  });
});
