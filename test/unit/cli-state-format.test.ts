import { describe, expect, it } from 'vitest';
import { formatStateRun } from '../../server/cli/commands/state.js';
import type { NodeRunReport } from '../../server/services/state-service.js';

const counts = { total: 4, changed: 1, unchanged: 3, failed: 0, wouldChange: 0 };
const report = (node: string, extra: Partial<NodeRunReport> = {}): NodeRunReport => ({ node, runId: `run-${node}`, mode: 'apply', result: 'changed', counts, durationMs: 1200, states: [], ...extra });

describe('state apply output', () => {
  it('names a node whose hardware changed during the run and says to apply it again (its own files lack it)', () => {
    const text = formatStateRun([report('gpu01', { hardwareChanged: true, hardwareChangedDuringRun: true }), report('gpu02', { hardwareChanged: true })], {
      type: 'summary',
      mode: 'apply',
      nodes: 2,
      failedNodes: 0,
      changedNodes: 2,
      states: { changed: 2, unchanged: 6, failed: 0, wouldChange: 0 },
    });
    expect(text).toContain('gpu01: its hardware changed during the run (a driver installed?): apply it again so its own files have it\n');
    expect(text).not.toContain('gpu02: its hardware');
  });
});
