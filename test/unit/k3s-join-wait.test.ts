import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../server/inventory/parse.js';
import { expectedJoinHosts, k3sJoinWaitTarget, parseJoinAddress } from '../../server/services/k3s-join-wait.js';

const waiting = (address: string) =>
  `states: 3 failed: k3s-join-server: exit 1: K3s server ${address} does not answer yet: k3s-agent is started and keeps trying to join by itself; rackseed converges this node again once ${address} answers its probe (run r1)`;

describe('the K3s server a node failed waiting for, read from its reason', () => {
  it.each([
    ['an address and port', waiting('10.0.3.1:6443'), { host: '10.0.3.1', port: 6443 }],
    ['a name and port', waiting('k3s01.lab:6443'), { host: 'k3s01.lab', port: 6443 }],
    ['no port: https, 443', waiting('vip.lab'), { host: 'vip.lab', port: 443 }],
    ['an IPv6 address in brackets', waiting('[fd00::1]:6443'), { host: 'fd00::1', port: 6443 }],
    ['an IPv6 address in brackets, no port', waiting('[fd00::1]'), { host: 'fd00::1', port: 443 }],
    ['a reason of the message before the exit code was added', 'states: 2 failed: k3s-join-server: K3s server 10.0.3.1:6443 does not answer yet: k3s-agent is started (run r)', { host: '10.0.3.1', port: 6443 }],
    ['another failure', 'states: 1 failed: /etc/app.conf: source missing (run r)', undefined],
    ['the words, from another state', 'states: 1 failed: my-check: exit 1: K3s server 10.0.3.1:6443 does not answer yet: hmm (run r)', undefined],
    ['a port that is not one', waiting('10.0.3.1:99999'), undefined],
    ['a port that is not a number', waiting('10.0.3.1:https'), undefined],
    ['no reason', undefined, undefined],
  ])('%s', (_what, reason, target) => {
    expect(k3sJoinWaitTarget(reason)).toEqual(target);
  });

  it('parses an address as the template does: the port after the last colon outside brackets', () => {
    expect(parseJoinAddress('[fd00::1]:6443')).toEqual({ host: 'fd00::1', port: 6443 });
    expect(parseJoinAddress(':6443')).toBeUndefined();
  });
});

describe('the hosts a K3s node may wait for', () => {
  const inv = parseInventory(
    `cluster: { name: c }
groups:
  ctl: { roles: [base, k3s-server] }
  plain: { roles: [base, k3s], data: { k3s: { role: server } } }
  agents: { roles: [base, k3s-agent] }
  vip: { roles: [base, k3s-agent], data: { k3s: { server_url: "https://k3s-vip.lab:6443/" } } }
  web: { roles: [base, web] }
nodes:
  - { name: s1, mac: "02:00:00:00:00:11", ip: 10.9.0.11, group: ctl }
  - { name: s2, mac: "02:00:00:00:00:15", group: plain }
  - { name: a1, mac: "02:00:00:00:00:12", ip: 10.9.0.12, group: agents }
  - { name: v1, mac: "02:00:00:00:00:13", group: vip }
  - { name: w1, mac: "02:00:00:00:00:01", ip: 10.9.0.1, group: web }
`,
    'inventory.yaml',
  );
  it.each([
    ['an agent: every K3s server by name and address (a plain k3s node with role server too)', 'a1', ['10.9.0.11', 's1', 's2']],
    ['an agent with a server_url: its host as well', 'v1', ['10.9.0.11', 'k3s-vip.lab', 's1', 's2']],
    ['a server: the other servers (and itself)', 's1', ['10.9.0.11', 's1', 's2']],
    ['a node without K3s: none', 'w1', []],
  ])('%s', (_what, name, hosts) => {
    expect([...expectedJoinHosts(inv, inv.nodes.get(name)!)].sort()).toEqual(hosts);
  });
});
