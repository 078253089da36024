import { isAbsolute, relative } from 'node:path';

/** Whether absolute path `child` is `parent` or lies below it. Pure (no file system access). */
export function isInside(child: string, parent: string): boolean {
  if (child === parent) return true;
  const rel = relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}
