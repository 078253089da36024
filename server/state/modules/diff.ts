/**
 * A unified diff of two texts, line by line (Myers' O((N+M)D) algorithm), in the format of `diff -u`:
 * `---`/`+++` headers, `@@ -a,b +c,d @@` hunks with three lines of context, and
 * `\ No newline at end of file` where a side lacks its final newline. Pure.
 */

export interface DiffOptions {
  fromFile?: string;
  toFile?: string;
  context?: number;
  /** Beyond this many differing lines the diff is replaced by a one-line summary (a diff nobody reads costs memory). */
  maxEdits?: number;
}

type Op = { kind: 'equal' | 'delete' | 'insert'; line: string };

interface Line {
  text: string;
  /** False only for a last line without a trailing newline. */
  newline: boolean;
}

function splitLines(text: string): Line[] {
  if (text === '') return [];
  const parts = text.split('\n');
  const last = parts.pop()!;
  const lines = parts.map((t) => ({ text: t, newline: true }));
  if (last !== '') lines.push({ text: last, newline: false });
  return lines;
}

const key = (line: Line): string => (line.newline ? `${line.text}\n` : line.text);

/** The edit script from a to b, or undefined when it needs more than maxEdits insertions and deletions. */
function myers(a: readonly string[], b: readonly string[], maxEdits: number): Op[] | undefined {
  const n = a.length;
  const m = b.length;
  const max = Math.min(n + m, maxEdits);
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  let found = false;
  for (let d = 0; d <= max && !found; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[k - 1 + offset]! < v[k + 1 + offset]!) ? v[k + 1 + offset]! : v[k - 1 + offset]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[k + offset] = x;
      if (x >= n && y >= m) {
        found = true;
        break;
      }
    }
  }
  if (!found) return undefined;

  const ops: Op[] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 1; d >= 0; d--) {
    const vd = trace[d]!;
    const k = x - y;
    const prevK = k === -d || (k !== d && vd[k - 1 + offset]! < vd[k + 1 + offset]!) ? k + 1 : k - 1;
    const prevX = d === 0 ? 0 : vd[prevK + offset]!;
    const prevY = d === 0 ? 0 : prevX - prevK;
    while (x > prevX && y > prevY) {
      ops.push({ kind: 'equal', line: a[--x]! });
      y--;
    }
    if (d > 0) {
      if (x === prevX) ops.push({ kind: 'insert', line: b[--y]! });
      else ops.push({ kind: 'delete', line: a[--x]! });
    }
  }
  return ops.reverse();
}

function range(start: number, count: number): string {
  // diff -u: an empty range names the line before it; a range of one line has no count.
  if (count === 0) return `${start},0`;
  return count === 1 ? `${start + 1}` : `${start + 1},${count}`;
}

function render(prefix: string, line: string): string[] {
  return line.endsWith('\n') ? [`${prefix}${line.slice(0, -1)}`] : [`${prefix}${line}`, '\\ No newline at end of file'];
}

/** Returns '' when the texts are equal. */
export function unifiedDiff(oldText: string, newText: string, options: DiffOptions = {}): string {
  if (oldText === newText) return '';
  const context = options.context ?? 3;
  const a = splitLines(oldText).map(key);
  const b = splitLines(newText).map(key);

  // Common head and tail cost nothing to skip and keep Myers' search small.
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const middle = myers(a.slice(head, a.length - tail), b.slice(head, b.length - tail), options.maxEdits ?? 20_000);
  if (middle === undefined) return `(diff too large: ${a.length} lines -> ${b.length} lines)\n`;
  const ops: Op[] = [
    ...a.slice(0, head).map((line) => ({ kind: 'equal' as const, line })),
    ...middle,
    ...a.slice(a.length - tail).map((line) => ({ kind: 'equal' as const, line })),
  ];

  const out = [`--- ${options.fromFile ?? 'a'}`, `+++ ${options.toFile ?? 'b'}`];
  // Positions of each op in a and b, then hunks: runs of changes joined when their context would touch.
  const posA: number[] = [];
  const posB: number[] = [];
  let ia = 0;
  let ib = 0;
  for (const op of ops) {
    posA.push(ia);
    posB.push(ib);
    if (op.kind !== 'insert') ia++;
    if (op.kind !== 'delete') ib++;
  }
  let i = 0;
  while (i < ops.length) {
    while (i < ops.length && ops[i]!.kind === 'equal') i++;
    if (i >= ops.length) break;
    const start = Math.max(0, i - context);
    let end = i;
    // Extend over changes and over equal runs short enough to be shared context.
    for (;;) {
      while (end < ops.length && ops[end]!.kind !== 'equal') end++;
      let next = end;
      while (next < ops.length && ops[next]!.kind === 'equal') next++;
      if (next < ops.length && next - end <= 2 * context) end = next;
      else break;
    }
    const stop = Math.min(ops.length, end + context);
    const hunk = ops.slice(start, stop);
    const countA = hunk.filter((op) => op.kind !== 'insert').length;
    const countB = hunk.filter((op) => op.kind !== 'delete').length;
    out.push(`@@ -${range(posA[start]!, countA)} +${range(posB[start]!, countB)} @@`);
    for (const op of hunk) out.push(...render(op.kind === 'equal' ? ' ' : op.kind === 'delete' ? '-' : '+', op.line));
    i = stop;
  }
  return `${out.join('\n')}\n`;
}
