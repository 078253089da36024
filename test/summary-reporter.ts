import type { SerializedError } from 'vitest';
import type { Reporter, TestModule, TestRunEndReason } from 'vitest/node';

/**
 * Ends the run with one plain line, "N passed, N failed[, N skipped]", which tools that read a test run's last
 * lines understand whatever the runner (vitest's own summary is decorated and spread over several lines). Whatever
 * fails the run counts as failed here too: a test, a file that did not load or whose hook threw (its tests then
 * read as skipped), an error outside any test, or a run that did not end as passed.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>, reason: TestRunEndReason): void {
    const count = { passed: 0, failed: 0, skipped: 0 };
    for (const m of testModules) {
      let failedTests = 0;
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed') count.passed++;
        else if (state === 'failed') failedTests++;
        else count.skipped++;
      }
      count.failed += failedTests;
      if (m.state() === 'failed' && failedTests === 0) count.failed++;
    }
    count.failed += unhandledErrors.length;
    if (reason !== 'passed' && count.failed === 0) count.failed = 1;
    const skipped = count.skipped > 0 ? `, ${count.skipped} skipped` : '';
    process.stdout.write(`\n${count.passed} passed, ${count.failed} failed${skipped}\n`);
  }
}
