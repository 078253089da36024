/**
 * Shell pieces the Slurm scripts share (slurm-reboot-script.ts, slurm-drain-script.ts). Pure text.
 *
 * `scontrol show node -o` prints one line of Field=value pairs; Reason, Comment and Extra hold free text (spaces,
 * even "State=..." typed by an administrator) and come after State. So State is the first ` State=` word and Reason
 * runs from the first ` Reason=` to the end of the line: a sed pattern would match the last occurrence instead.
 */

import { SLURM_DRAIN_PREFIX } from '../readiness/slurm-drain.js';
import { shellQuote } from '../state/modules/shell.js';

/** The prefixes of every reason rackseed gives Slurm: a reimage's reboot and a readiness drain. */
export const SLURM_REIMAGE_REASON = 'rackseed reimage';
export { SLURM_DRAIN_PREFIX };

/**
 * `show NODE`: $out, $state and $reason of the node (status 1 and $out holding scontrol's words if it is unknown);
 * `fail NODE`: prints `fail NODE <$out on one line>`.
 */
export const SHOW_NODE_SH = [
  `show() { out=$(scontrol show node -o "$1" 2>&1) || return 1`,
  `  state=$(printf '%s\\n' "$out" | awk '{ i = index($0, " State="); if (i) { s = substr($0, i + 7); sub(/ .*/, "", s); print s; exit } }')`,
  `  reason=$(printf '%s\\n' "$out" | awk '{ i = index($0, " Reason="); if (i) { print substr($0, i + 8); exit } }'); }`,
  `fail() { printf 'fail %s %s\\n' "$1" "$(printf '%s' "$out" | tr '\\n' ' ')"; }`,
].join('\n');

/**
 * A `case "$reason" in` pattern list for reasons that are nobody's hold: none, Slurm's own ("Not responding
 * [slurm@...]", "reboot timed out"), and the rackseed reasons given. Any other reason is a person's (an
 * administrator's drain or DOWN, "bad DIMM, ticket 42 [root@...]"), which rackseed never replaces or lifts.
 */
export function notHeldPatterns(ours: readonly string[]): string {
  return ["''", ...ours.map((p) => `${shellQuote(p)}*`), `*'[slurm@'*`].join('|');
}
