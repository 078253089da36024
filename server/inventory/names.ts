import { isValidHostname } from '../model/hostname.js';
import { isIpv4 } from '../model/ipv4.js';

/** A DNS name made of RFC 1123 labels (cluster domains, BMC host names). */
export function isDnsName(text: string): boolean {
  return text.length <= 253 && text.split('.').every(isValidHostname);
}

/**
 * BMCs are reached by address or by name. Anything made only of digits and dots must be a valid IPv4
 * address: 10.1.0.300 is a typo, not a host name, even though RFC 1123 would allow numeric labels.
 */
export function isAddressOrDnsName(text: string): boolean {
  if (/^[\d.]+$/.test(text)) return isIpv4(text);
  return isDnsName(text);
}

/** Group names appear in CLI targets (group:NAME) and file names, so they stay plain. */
export function isValidGroupName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name);
}
