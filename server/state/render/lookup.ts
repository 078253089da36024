/** Salt's colon-delimited lookup (`pillar.get('slurm:partitions:0')`): mappings by key, lists by index. */
export function lookupPath(data: unknown, path: string): { found: true; value: unknown } | { found: false } {
  let current = data;
  for (const part of path.split(':')) {
    if (Array.isArray(current) && /^\d+$/.test(part) && Number(part) < current.length) current = current[Number(part)];
    else if (current !== null && typeof current === 'object' && !Array.isArray(current) && Object.hasOwn(current, part)) current = (current as Record<string, unknown>)[part];
    else return { found: false };
  }
  return { found: true, value: current };
}
