import { describe, expect, it } from 'vitest';
import { parseCidr, parseIpv4 } from '../../../server/model/ipv4.js';
import { chooseOffer, decideRequest, mayDecline, type Holder, type LeaseView, type PoolRange, type SubnetScope } from '../../../server/protocol/dhcp/lease-decision.js';

const ip = (s: string) => parseIpv4(s)!;
const scope: SubnetScope = { subnet: parseCidr('10.0.0.0/24')!, pool: { start: ip('10.0.0.100'), end: ip('10.0.0.103') } };
const A = '52:54:00:00:00:0a';
const B = '52:54:00:00:00:0b';

function view(opts: { held?: Record<string, Holder>; last?: Record<string, string>; reserved?: Record<string, string> } = {}): LeaseView {
  return {
    holder: (n) => Object.entries(opts.held ?? {}).find(([k]) => ip(k) === n)?.[1],
    lastAddressOf: (mac) => (opts.last?.[mac] ? ip(opts.last[mac]) : undefined),
    reservedFor: (n) => Object.entries(opts.reserved ?? {}).find(([k]) => ip(k) === n)?.[1],
    *poolOrder(pool: PoolRange) {
      for (let n = pool.start; n <= pool.end; n++) yield n;
    },
  };
}

describe('chooseOffer', () => {
  const cases: Array<[string, Parameters<typeof chooseOffer>, ReturnType<typeof chooseOffer>]> = [
    ['reservation wins', [{ mac: A, reserved: ip('10.0.0.20') }, scope, view()], { kind: 'offer', ip: ip('10.0.0.20'), source: 'reservation' }],
    ['reservation already held by this MAC', [{ mac: A, reserved: ip('10.0.0.20') }, scope, view({ held: { '10.0.0.20': { mac: A, state: 'bound' } } })], { kind: 'offer', ip: ip('10.0.0.20'), source: 'reservation' }],
    ['reservation held by another MAC is not offered', [{ mac: A, reserved: ip('10.0.0.20') }, scope, view({ held: { '10.0.0.20': { mac: B, state: 'bound' } } })], { kind: 'ignore', reason: 'reservation-held' }],
    ['reservation in another subnet: no pool address either (the node would be unreachable at its own)', [{ mac: A, reserved: ip('10.9.0.20') }, scope, view()], { kind: 'ignore', reason: 'reservation-elsewhere' }],
    ['a reservation on the network, broadcast, server or router address is never offered', [{ mac: A, reserved: ip('10.0.0.255') }, { ...scope, unusable: new Set([ip('10.0.0.0'), ip('10.0.0.255')]) }, view()], { kind: 'ignore', reason: 'reservation-unusable' }],
    ['reservation this MAC declined stays quarantined', [{ mac: A, reserved: ip('10.0.0.20') }, scope, view({ held: { '10.0.0.20': { mac: A, state: 'declined' } } })], { kind: 'ignore', reason: 'reservation-declined' }],
    ['a returning client gets its previous address', [{ mac: A }, scope, view({ last: { [A]: '10.0.0.102' } })], { kind: 'offer', ip: ip('10.0.0.102'), source: 'previous' }],
    ['its previous address taken by another: the requested one', [{ mac: A }, scope, view({ last: { [A]: '10.0.0.102' }, held: { '10.0.0.102': { mac: B, state: 'bound' } } }), ip('10.0.0.101')], { kind: 'offer', ip: ip('10.0.0.101'), source: 'requested' }],
    ['requested outside the pool: first free pool address', [{ mac: A }, scope, view(), ip('10.0.0.5')], { kind: 'offer', ip: ip('10.0.0.100'), source: 'pool' }],
    ['skips held, quarantined and reserved addresses', [{ mac: A }, scope, view({ held: { '10.0.0.100': { mac: B, state: 'offered' }, '10.0.0.101': { mac: A, state: 'declined' } }, reserved: { '10.0.0.102': 'gpu01' } })], { kind: 'offer', ip: ip('10.0.0.103'), source: 'pool' }],
    ['pool exhausted', [{ mac: A }, scope, view({ held: { '10.0.0.100': { mac: B, state: 'bound' }, '10.0.0.101': { mac: B, state: 'bound' }, '10.0.0.102': { mac: B, state: 'bound' }, '10.0.0.103': { mac: B, state: 'bound' } } })], { kind: 'ignore', reason: 'pool-exhausted' }],
    ['no pool: unknown machines get nothing', [{ mac: A }, { subnet: scope.subnet }, view()], { kind: 'ignore', reason: 'no-pool' }],
  ];
  it.each(cases)('%s', (_n, args, expected) => {
    expect(chooseOffer(...args)).toEqual(expected);
  });
});

describe('decideRequest', () => {
  const cases: Array<[string, Parameters<typeof decideRequest>, ReturnType<typeof decideRequest>]> = [
    ['another server was chosen: silence', [{ mac: A }, scope, view(), { serverIdMatches: false, target: ip('10.0.0.100') }], { kind: 'ignore', reason: 'other-server' }],
    ['selecting our offer', [{ mac: A }, scope, view({ held: { '10.0.0.100': { mac: A, state: 'offered' } } }), { serverIdMatches: true, target: ip('10.0.0.100') }], { kind: 'ack', ip: ip('10.0.0.100') }],
    ['selecting an address another client holds', [{ mac: A }, scope, view({ held: { '10.0.0.100': { mac: B, state: 'bound' } } }), { serverIdMatches: true, target: ip('10.0.0.100') }], { kind: 'nak', reason: 'address is in use' }],
    ['init-reboot for a free pool address', [{ mac: A }, scope, view(), { serverIdMatches: undefined, target: ip('10.0.0.101') }], { kind: 'ack', ip: ip('10.0.0.101') }],
    ['init-reboot for an address outside our subnets: not ours to NAK', [{ mac: A }, scope, view(), { serverIdMatches: undefined, target: ip('192.168.7.9') }], { kind: 'ignore', reason: 'not-ours' }],
    ['init-reboot in our subnet but outside pool and reservations: silent', [{ mac: A }, scope, view(), { serverIdMatches: undefined, target: ip('10.0.0.7') }], { kind: 'ignore', reason: 'not-ours' }],
    ['addressed to us for an address we never hand out', [{ mac: A }, scope, view(), { serverIdMatches: true, target: ip('10.0.0.7') }], { kind: 'nak', reason: 'address was not offered by this server' }],
    ['someone else\'s reservation', [{ mac: A }, scope, view({ reserved: { '10.0.0.20': 'gpu01' } }), { serverIdMatches: undefined, target: ip('10.0.0.20') }], { kind: 'nak', reason: 'address is reserved for another node' }],
    ['a reservation on an unusable address is NAKed', [{ mac: A, reserved: ip('10.0.0.255') }, { ...scope, unusable: new Set([ip('10.0.0.255')]) }, view(), { serverIdMatches: undefined, target: ip('10.0.0.255') }], { kind: 'nak', reason: 'reserved address is the network, broadcast, server or router address' }],
    ['renewing its reservation', [{ mac: A, reserved: ip('10.0.0.20') }, scope, view({ held: { '10.0.0.20': { mac: A, state: 'bound' } } }), { serverIdMatches: undefined, target: ip('10.0.0.20') }], { kind: 'ack', ip: ip('10.0.0.20') }],
    ['a reserved node asking for a pool address is moved to its reservation', [{ mac: A, reserved: ip('10.0.0.20') }, scope, view(), { serverIdMatches: undefined, target: ip('10.0.0.101') }], { kind: 'nak', reason: 'this client has a different reserved address' }],
    ['a reserved node asking for a foreign address: not ours', [{ mac: A, reserved: ip('10.0.0.20') }, scope, view(), { serverIdMatches: undefined, target: ip('172.16.0.9') }], { kind: 'ignore', reason: 'not-ours' }],
    ['init-reboot for an address of another subnet we serve (the client moved): NAK', [{ mac: A }, scope, view(), { serverIdMatches: undefined, target: ip('10.0.5.120'), targetOnOtherServedSubnet: true }], { kind: 'nak', reason: 'address belongs to another subnet than the one the client is on' }],
    ['a reserved node asking for an address of another subnet we serve: NAK', [{ mac: A, reserved: ip('10.0.0.20') }, scope, view(), { serverIdMatches: undefined, target: ip('10.0.5.120'), targetOnOtherServedSubnet: true }], { kind: 'nak', reason: 'this client has a different reserved address' }],
    ['a node reserved on another subnet asking for a pool address it held before: NAK, never a pool address', [{ mac: A, reserved: ip('10.9.0.20') }, scope, view({ held: { '10.0.0.101': { mac: A, state: 'bound' } } }), { serverIdMatches: undefined, target: ip('10.0.0.101') }], { kind: 'nak', reason: "this client's reserved address is on another subnet" }],
    ['no address at all', [{ mac: A }, scope, view(), { serverIdMatches: true, target: undefined }], { kind: 'ignore', reason: 'no-address' }],
    ['a declined reservation is refused to its own node', [{ mac: A, reserved: ip('10.0.0.20') }, scope, view({ held: { '10.0.0.20': { mac: A, state: 'declined' } } }), { serverIdMatches: undefined, target: ip('10.0.0.20') }], { kind: 'nak', reason: 'reserved address is quarantined: this client declined it (in use by another host)' }],
    ['a quarantined address is refused to its decliner too', [{ mac: A }, scope, view({ held: { '10.0.0.100': { mac: A, state: 'declined' } } }), { serverIdMatches: undefined, target: ip('10.0.0.100') }], { kind: 'nak', reason: 'address is in use' }],
  ];
  it.each(cases)('%s', (_n, args, expected) => {
    expect(decideRequest(...args)).toEqual(expected);
  });
});

describe('mayDecline', () => {
  const cases: Array<[string, Parameters<typeof mayDecline>, boolean]> = [
    ['the holder of a lease', [{ mac: A }, ip('10.0.0.100'), view({ held: { '10.0.0.100': { mac: A, state: 'bound' } } })], true],
    ['another MAC than the one it was offered to', [{ mac: B }, ip('10.0.0.100'), view({ held: { '10.0.0.100': { mac: A, state: 'offered' } } })], false],
    ['an address nobody holds', [{ mac: B }, ip('10.0.0.101'), view()], true],
    ['a second decline of a quarantined address', [{ mac: B }, ip('10.0.0.100'), view({ held: { '10.0.0.100': { mac: A, state: 'declined' } } })], true],
    ['the node its own reservation', [{ mac: A, reserved: ip('10.0.0.20') }, ip('10.0.0.20'), view({ reserved: { '10.0.0.20': 'gpu01' } })], true],
    ['a stranger another node\'s reservation', [{ mac: B }, ip('10.0.0.20'), view({ reserved: { '10.0.0.20': 'gpu01' } })], false],
  ];
  it.each(cases)('%s', (_n, args, expected) => {
    expect(mayDecline(...args)).toBe(expected);
  });
});
