/**
 * Maps a line of rendered SLS text back to the template line it most likely came from, so a YAML error points at
 * the line the operator edits. A rendered line whose text occurs exactly once in the template and once in the output
 * is an anchor; other lines are counted from the nearest anchor above (back from the nearest one below when there is
 * none above). Lines a loop produced map near the loop, and no line maps past the template's end.
 */
export function renderedLineMapper(templateText: string, renderedText: string): (renderedLine: number) => number {
  if (templateText === renderedText) return (line) => line;
  const templateLines = templateText.split('\n').map((l) => l.trim());
  const renderedLines = renderedText.split('\n').map((l) => l.trim());
  const templateCount = countOccurrences(templateLines);
  const renderedCount = countOccurrences(renderedLines);
  const templateIndex = new Map<string, number>();
  templateLines.forEach((l, i) => templateIndex.set(l, i + 1));
  const anchors: Array<{ rendered: number; template: number }> = [];
  renderedLines.forEach((l, i) => {
    if (l !== '' && templateCount.get(l) === 1 && renderedCount.get(l) === 1) anchors.push({ rendered: i + 1, template: templateIndex.get(l)! });
  });
  const clamp = (line: number): number => Math.max(1, Math.min(line, templateLines.length));
  return (line) => {
    let anchor: { rendered: number; template: number } | undefined;
    for (const a of anchors) {
      if (a.rendered > line) break;
      anchor = a;
    }
    if (anchor) return clamp(anchor.template + (line - anchor.rendered));
    const below = anchors[0];
    return clamp(below ? below.template - (below.rendered - line) : line);
  };
}

function countOccurrences(lines: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const l of lines) counts.set(l, (counts.get(l) ?? 0) + 1);
  return counts;
}
