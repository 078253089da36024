import type { Transport } from '../state/types.js';
import type { ObservedStore } from '../store/types.js';

/**
 * Adapters that let the audit drive StateService without changing it: the audit opens one connection per node and
 * lends it to the dry run, and records one run of its own instead of the dry run's.
 */

/** `transport` for a borrower: everything passes through except close(), which stays with the lender. */
export function lentTransport(transport: Transport): Transport {
  return {
    target: transport.target,
    exec: (command, options) => transport.exec(command, options),
    readFile: (path) => transport.readFile(path),
    writeFile: (path, data, options) => transport.writeFile(path, data, options),
    close: async () => undefined,
  };
}

/**
 * `store` with run records dropped (createRun / finishRun do nothing); every other call, facts included, goes
 * through. The audit stores its dry run inside its own 'audit' run, so the history shows one run per node and
 * audit, not an 'audit' next to a 'test' nobody asked for.
 */
export function withoutRunRecords(store: ObservedStore): ObservedStore {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'createRun' || property === 'finishRun') return async () => undefined;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
