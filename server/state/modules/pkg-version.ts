/**
 * Whether an installed version satisfies a pin. Exact match, or match ignoring the epoch when the pin has none
 * (`9.2p1-2` for `1:9.2p1-2`), or a prefix match when the pin ends in `*` (`1.24*`). Comparison operators
 * (`>=1.2`) are not supported: pins are exact, as apt's `name=version` is.
 */
export function versionMatches(installed: string, wanted: string): boolean {
  const candidates = [installed];
  const epoch = /^\d+:(.*)$/.exec(installed);
  if (epoch && !/^\d+:/.test(wanted)) candidates.push(epoch[1]!);
  if (wanted.endsWith('*')) {
    const prefix = wanted.slice(0, -1);
    return candidates.some((v) => v.startsWith(prefix));
  }
  return candidates.includes(wanted);
}
