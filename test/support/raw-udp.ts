import type { Netns } from './netns.js';

/**
 * Sends one UDP datagram with a source port of our choosing, port 0 included, which no socket API can bind. A raw
 * socket (root, inside the test namespace) lets the kernel write the IP header while we write the UDP header, with
 * checksum 0 ("none", allowed over IPv4). Perl is used because Debian always has it (perl-base is Essential) and
 * Node has no raw sockets.
 */
const SEND_RAW_UDP = `
use strict; use Socket;
my ($dst, $dport, $sport, $hex) = @ARGV;
my $payload = pack('H*', $hex);
my $udp = pack('nnnn', $sport, $dport, 8 + length($payload), 0) . $payload;
socket(my $s, PF_INET, SOCK_RAW, 17) or die "raw socket: $!\\n";
defined(send($s, $udp, 0, sockaddr_in(0, inet_aton($dst)))) or die "send: $!\\n";
`;

export function sendRawUdp(netns: Netns, ns: string, to: { address: string; port: number }, sourcePort: number, payload: Uint8Array): void {
  const r = netns.run(ns, 'perl', ['-e', SEND_RAW_UDP, to.address, String(to.port), String(sourcePort), Buffer.from(payload).toString('hex')]);
  if (r.status !== 0) throw new Error(`raw UDP send to ${to.address}:${to.port} failed: ${r.stderr}`);
}
