import { describe, expect, it } from 'vitest';
import { replyDestination, type RouteInput } from '../../../server/protocol/dhcp/destination.js';
import { MessageType } from '../../../server/protocol/dhcp/options.js';

const Z = '0.0.0.0';
const req = (giaddr: string, ciaddr: string, flags: number): RouteInput['request'] => ({ giaddr, ciaddr, flags });

describe('reply destination (RFC 2131 section 4.1)', () => {
  it.each<[string, RouteInput, string, number, string]>([
    ['relayed', { request: req('10.1.0.1', Z, 0), replyType: MessageType.OFFER, receivedOn: 'dhcp' }, '10.1.0.1', 67, 'relay'],
    ['relayed, ciaddr set too', { request: req('10.1.0.1', '10.1.0.57', 0), replyType: MessageType.ACK, receivedOn: 'dhcp' }, '10.1.0.1', 67, 'relay'],
    ['relayed NAK still goes to the relay', { request: req('10.1.0.1', Z, 0), replyType: MessageType.NAK, receivedOn: 'dhcp' }, '10.1.0.1', 67, 'relay'],
    ['renewing client (ciaddr)', { request: req(Z, '10.1.0.57', 0), replyType: MessageType.ACK, receivedOn: 'dhcp' }, '10.1.0.57', 68, 'client-address'],
    ['renewing client with broadcast bit', { request: req(Z, '10.1.0.57', 0x8000), replyType: MessageType.ACK, receivedOn: 'dhcp' }, '10.1.0.57', 68, 'client-address'],
    // A DISCOVER never carries ciaddr: one that does is answered as if it did not (it named an address anywhere).
    ['OFFER to a DISCOVER naming a ciaddr is broadcast', { request: req(Z, '203.0.113.7', 0), replyType: MessageType.OFFER, receivedOn: 'dhcp' }, '255.255.255.255', 68, 'no-address'],
    ['NAK to a local client is broadcast', { request: req(Z, '10.1.0.57', 0), replyType: MessageType.NAK, receivedOn: 'dhcp' }, '255.255.255.255', 68, 'nak-broadcast'],
    ['broadcast bit', { request: req(Z, Z, 0x8000), replyType: MessageType.OFFER, receivedOn: 'dhcp' }, '255.255.255.255', 68, 'broadcast-flag'],
    ['no address yet, no broadcast bit', { request: req(Z, Z, 0), replyType: MessageType.OFFER, receivedOn: 'dhcp' }, '255.255.255.255', 68, 'no-address'],
    ['proxyDHCP port 4011', { request: req(Z, '10.1.0.57', 0), replyType: MessageType.ACK, receivedOn: 'proxy', source: { address: '10.1.0.57', port: 4011 } }, '10.1.0.57', 4011, 'proxy-source'],
    ['proxyDHCP from an ephemeral port', { request: req(Z, '10.1.0.57', 0), replyType: MessageType.ACK, receivedOn: 'proxy', source: { address: '10.1.0.57', port: 1024 } }, '10.1.0.57', 1024, 'proxy-source'],
  ])('%s', (_name, input, address, port, reason) => {
    expect(replyDestination(input)).toEqual({ address, port, reason });
  });
});
