/**
 * A deliberately small XML reader for tool output such as `nvidia-smi -q -x`: elements, attributes and text,
 * nothing else (no namespaces, no DTD processing, no entity definitions beyond the five predefined ones and
 * numeric references). Pure and total: malformed input yields the best tree it can, never an exception, because
 * a readiness check must report odd output as evidence rather than crash.
 */

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated character data directly inside this element, trimmed. */
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** A numeric reference beyond Unicode (&#x110000;, or too many digits) reads as U+FFFD; fromCodePoint would throw. */
function character(codePoint: number): string {
  return codePoint <= 0x10ffff ? String.fromCodePoint(codePoint) : '\uFFFD';
}

function decode(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (whole, ref: string) => {
    if (ref.startsWith('#x')) return character(parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return character(parseInt(ref.slice(1), 10));
    return ENTITIES[ref] ?? whole;
  });
}

function parseAttrs(s: string): Record<string, string> {
  const attrs: Record<string, string> = {};
  for (const m of s.matchAll(/([A-Za-z_:][-\w:.]*)\s*=\s*("([^"]*)"|'([^']*)')/g)) attrs[m[1]!] = decode(m[3] ?? m[4] ?? '');
  return attrs;
}

/** Parses a document; returns a synthetic '#document' element whose children are the top-level elements. */
export function parseXml(text: string): XmlElement {
  const doc: XmlElement = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: XmlElement[] = [doc];
  const raw: string[][] = [[]];
  // Comments, processing instructions, DOCTYPE, CDATA, and ordinary tags, in document order.
  const token = /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!\[CDATA\[([\s\S]*?)\]\]>|<![^>]*>|<(\/?)([A-Za-z_][-\w:.]*)([^>]*?)(\/?)>/g;
  let last = 0;
  for (let m = token.exec(text); m; m = token.exec(text)) {
    raw[raw.length - 1]!.push(decode(text.slice(last, m.index)));
    last = token.lastIndex;
    if (m[1] !== undefined) {
      raw[raw.length - 1]!.push(m[1]);
      continue;
    }
    const name = m[3];
    if (!name) continue; // comment, PI or DOCTYPE
    if (m[2] === '/') {
      // Close the nearest open element of that name; a stray close tag is ignored.
      const at = stack.map((e) => e.name).lastIndexOf(name);
      if (at <= 0) continue;
      while (stack.length > at) {
        const done = stack.pop()!;
        done.text = raw.pop()!.join('').trim();
      }
      continue;
    }
    const el: XmlElement = { name, attrs: parseAttrs(m[4] ?? ''), children: [], text: '' };
    stack[stack.length - 1]!.children.push(el);
    if (m[5] !== '/') {
      stack.push(el);
      raw.push([]);
    }
  }
  raw[raw.length - 1]!.push(decode(text.slice(last)));
  // Unclosed elements (truncated output) keep what they collected.
  while (stack.length > 0) {
    const done = stack.pop()!;
    done.text = (raw.pop() ?? []).join('').trim();
  }
  return doc;
}

/** Direct children with this name. */
export function children(el: XmlElement | undefined, name: string): XmlElement[] {
  return el ? el.children.filter((c) => c.name === name) : [];
}

/** The first element along a path of direct children: child(gpu, 'fb_memory_usage', 'total'). */
export function child(el: XmlElement | undefined, ...path: string[]): XmlElement | undefined {
  let cur = el;
  for (const name of path) cur = cur?.children.find((c) => c.name === name);
  return cur;
}

/** Text of the element at `path`, or undefined when it is absent. */
export function childText(el: XmlElement | undefined, ...path: string[]): string | undefined {
  return child(el, ...path)?.text;
}
