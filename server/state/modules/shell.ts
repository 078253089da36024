/**
 * Building shell commands for a node. Every value that comes from a state (names, paths, versions, contents) goes
 * through shellQuote, so it reaches the program as exactly one argument whatever it contains.
 */

/** POSIX single-quoting. Plain words are quoted too, so a reader never has to decide whether a value was safe. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Quotes each word and joins them with spaces. */
export function quoteAll(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}

/**
 * Several read-only probes in one round trip. Each part's stdout is followed by a marker line carrying its exit
 * status, so one `exec` answers a whole check (an SSH round trip costs more than any of these commands).
 */
const SECTION_MARK = '__rackseed_section__';

export interface Section {
  out: string;
  code: number;
}

export function sectionScript(parts: ReadonlyArray<readonly [name: string, command: string]>): string {
  return parts.map(([name, command]) => `{ ${command}\n}; printf '\\n${SECTION_MARK} %s %s\\n' ${name} "$?"`).join('; ');
}

/** Splits the output of a sectionScript by part name. A part that printed no marker is absent. */
export function parseSections(stdout: string): Map<string, Section> {
  const sections = new Map<string, Section>();
  const marker = new RegExp(`\\n${SECTION_MARK} (\\S+) (\\d+)\\n`, 'g');
  let start = 0;
  for (let m = marker.exec(stdout); m !== null; m = marker.exec(stdout)) {
    sections.set(m[1]!, { out: stdout.slice(start, m.index), code: Number(m[2]) });
    start = marker.lastIndex;
  }
  return sections;
}
