import { RackseedError } from '../../model/errors.js';

/**
 * iPXE expands ${...} across the whole line before it splits arguments on white space, and treats `#` as a
 * comment and `||`/`&&` as operators. Any value written into a script therefore goes through one of these.
 */

function present(value: unknown, filter: string): string {
  if (value === undefined || value === null) {
    throw new RackseedError('TEMPLATE_MISSING_VALUE', `iPXE template: a value passed to "${filter}" is missing`);
  }
  return String(value);
}

/** Free text in echo lines and comments: anything outside a plain set becomes "_" and it is capped in length. */
export function ipxeText(value: unknown): string {
  const s = present(value, 'ipxe_text');
  const cleaned = s.replace(/[^A-Za-z0-9 ._:/,+@=()[\]-]/g, '_');
  return cleaned.length > 120 ? `${cleaned.slice(0, 117)}...` : cleaned;
}

const SAFE_ARG = /^[A-Za-z0-9._:/=,+@%~-]+$/;

/**
 * One command argument (a kernel argument, a file name). There is no escape syntax for these in iPXE, and a
 * kernel argument cannot be percent-encoded, so an unsafe value is refused rather than silently changed.
 */
export function ipxeArg(value: unknown): string {
  const s = present(value, 'ipxe_arg');
  if (!SAFE_ARG.test(s)) {
    throw new RackseedError('TEMPLATE_ERROR', `iPXE template: unsafe argument ${JSON.stringify(s)} (allowed: letters, digits and . _ : / = , + @ % ~ -)`, {
      value: s,
    });
  }
  return s;
}

/** A whole http(s) URL: normalised by the URL parser, then the characters iPXE would interpret are encoded. */
export function ipxeUrl(value: unknown): string {
  const s = present(value, 'ipxe_url_base');
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new RackseedError('TEMPLATE_ERROR', `iPXE template: ${JSON.stringify(s)} is not a URL`, { value: s });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RackseedError('TEMPLATE_ERROR', `iPXE template: ${JSON.stringify(s)} is not an http(s) URL`, { value: s });
  }
  return url.href.replace(/[$\s#"'\\`|;]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}
