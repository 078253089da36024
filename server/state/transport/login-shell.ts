import { commandTooLong, MAX_ARGUMENT_BYTES } from './argument-limit.js';

/**
 * The one line sshd hands to root's LOGIN SHELL for every command. That shell may be bash or dash, but also tcsh/csh
 * (older HPC sites) or fish, which reject POSIX syntax (`$$` in fish, `>&2` and `if ...; then` in csh, a newline
 * inside quotes in csh), so the line is only `exec /bin/sh -c '<boot>' sh '<base64>' '<base64>' ...`, which every one
 * of them parses the same way: inside single quotes <boot> and base64 hold no character any of them treats specially
 * (no quote, no backslash for fish, no `!` for csh history, no newline for csh). The script's base64 comes in pieces
 * because BSD csh refuses a word over 8 KiB ("Word too long"). `exec` keeps the login shell's PID, which sshd made a
 * session and process group leader: the PID the timeout kill aims at (OpenSSH refuses the protocol's own "signal"
 * request for root sessions, so killing that group is the only way to stop a hung command).
 *
 * /bin/sh then prints that PID on a marked stderr line (root's startup files may print to stderr first: the mark
 * finds the line after their noise), decodes the script, and becomes it, under timeout(1) where the node has one: the
 * server's kill goes over the connection, and a command whose connection dropped must not run on past its limit.
 */

/** The line /bin/sh prints before the command, so its PID is found after whatever startup files print. */
export const PID_MARK = '@@rackseed-pid ';

/** sshd runs `<login shell> -c <line>`: the line is one argument on the node, and beyond this E2BIG stops it there. */
export const MAX_LINE_BYTES = MAX_ARGUMENT_BYTES;

/** Comfortably under BSD csh's longest word (8 KiB less its own bookkeeping). */
const PIECE_CHARS = 4096;

/** Printable ASCII but for what some login shell interprets inside single quotes. */
const INERT = /^[\x20-\x7e]*$/;
const SPECIAL = /['\\!]/;

function boot(limitSeconds: number | undefined): string {
  const parts = [
    `echo "${PID_MARK}$$" >&2`,
    's=$(printf %s "$@" | base64 -d) || { echo "rackseed: cannot decode the command: the node needs base64 (coreutils or busybox)" >&2; exit 127; }',
    ...(limitSeconds !== undefined ? [`if command -v timeout >/dev/null 2>&1; then exec timeout -s KILL ${limitSeconds} sh -c "$s"; fi`] : []),
    'exec sh -c "$s"',
  ];
  const text = parts.join('; ');
  if (!INERT.test(text) || SPECIAL.test(text)) throw new Error(`login shell boot text is not inert in every shell: ${text}`);
  return text;
}

/**
 * The line for `script` (run by `sh -c`), bounded on the node by `limitSeconds` when given. A script too long for
 * one argument is refused here (STATE_COMMAND_TOO_LONG) rather than failing on the node with E2BIG; data belongs on
 * stdin, as writeFile sends file contents.
 */
export function loginShellLine(script: string, limitSeconds?: number): string {
  if (limitSeconds !== undefined && !(Number.isInteger(limitSeconds) && limitSeconds > 0)) throw new Error(`bad node time limit ${limitSeconds}`);
  const encoded = Buffer.from(script, 'utf8').toString('base64');
  const pieces = encoded.match(new RegExp(`.{1,${PIECE_CHARS}}`, 'g')) ?? [''];
  const line = `exec /bin/sh -c '${boot(limitSeconds)}' sh ${pieces.map((p) => `'${p}'`).join(' ')}`;
  if (line.length > MAX_LINE_BYTES) {
    throw commandTooLong(Buffer.byteLength(script, 'utf8'), maxScriptBytes(limitSeconds));
  }
  return line;
}

/** The longest script (in UTF-8 bytes) loginShellLine accepts. */
export function maxScriptBytes(limitSeconds?: number): number {
  // Each piece of base64 costs its length and three characters of quoting and space.
  const room = MAX_LINE_BYTES - loginShellLine('', limitSeconds).length + 3;
  const pieceCost = PIECE_CHARS + 3;
  const wholePieces = Math.floor(room / pieceCost);
  const rest = Math.max(0, room - wholePieces * pieceCost - 3);
  return Math.floor((wholePieces * PIECE_CHARS + rest) / 4) * 3;
}
