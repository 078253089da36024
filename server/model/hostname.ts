/** RFC 1123 host name label rules, applied to a single label (rackseed node names are not FQDNs). */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

export function isValidHostname(name: string): boolean {
  return LABEL.test(name);
}
