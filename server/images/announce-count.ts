/**
 * An announce counter (`left`, `uploaded`, `downloaded`) as sent, or -1 when it is missing or garbled: unknown, which
 * for `left` is not "complete" (bittorrent-tracker counts such a peer as incomplete too).
 */
export const knownCount = (v: unknown): number => {
  const n = (typeof v === 'string' && v !== '') || typeof v === 'number' ? Number(v) : NaN;
  return Number.isFinite(n) && n >= 0 ? n : -1;
};
