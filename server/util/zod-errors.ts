import type { z } from 'zod';
import { formatKeyPath, type YamlSource } from './yaml-source.js';

export interface LocatedIssue {
  file: string;
  line?: number;
  keyPath: string;
  message: string;
}

/** Turns the first zod issue into "file:line: key.path: what was expected", pointing at the offending key. */
export function locateIssue(error: z.ZodError, source: YamlSource): LocatedIssue {
  const issue = error.issues[0]!;
  let path: PropertyKey[] = [...issue.path];
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    path = [...path, key];
    message = `unknown key "${key}" (a typo?)`;
  } else if (issue.code === 'invalid_type') {
    // zod 4 does not keep the input unless asked to; its message ends with what it received.
    const received = /received (\w+)/.exec(issue.message)?.[1];
    message = received === 'undefined' ? `required (expected ${issue.expected})` : `expected ${issue.expected}, got ${received ?? 'something else'}`;
  }
  const yamlPath = path.filter((p): p is string | number => typeof p !== 'symbol');
  const line = source.lineOf(yamlPath);
  return { file: source.file, ...(line !== undefined ? { line } : {}), keyPath: formatKeyPath(path), message };
}

export function formatLocated(i: LocatedIssue): string {
  return `${i.file}${i.line !== undefined ? `:${i.line}` : ''}: ${i.keyPath}: ${i.message}`;
}
