import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../server/config.js';
import { RackseedError } from '../../../server/model/errors.js';

function errorOf(text: string): RackseedError {
  try {
    parseConfig(text, '/etc/rackseed/rackseed.yaml');
  } catch (e) {
    if (e instanceof RackseedError) return e;
    throw e;
  }
  throw new Error('expected a config error');
}

describe('config: safe defaults', () => {
  it('an empty file gives HTTP and TFTP on, DHCP off, data in ./data next to the file', () => {
    const c = parseConfig('', '/etc/rackseed/rackseed.yaml');
    expect(c.http).toMatchObject({ enabled: true, port: 8080, listen: '0.0.0.0' });
    expect(c.tftp).toMatchObject({ enabled: true, port: 69, root: '/usr/lib/ipxe', maxTransfers: 512, maxTransfersPerClient: 16 });
    expect(c.dhcp.mode).toBe('off');
    expect(c.dataDir).toBe('/etc/rackseed/data');
    expect(c.store).toEqual({ kind: 'sqlite', path: '/etc/rackseed/data/rackseed.db' });
    expect(c.inventoryPath).toBe('/etc/rackseed/inventory.yaml');
    expect(c.provisioning).toEqual({ kernel: 'installer/vmlinuz', initrd: 'installer/initrd.img', tokenSeconds: 14400 });
  });

  it('trusts no reverse proxy unless told which: addresses, subnets and the loopback/linklocal/uniquelocal words', () => {
    expect(parseConfig('', 'r.yaml').http.trustProxy).toEqual([]);
    expect(parseConfig('http:\n  trust_proxy: [127.0.0.1, 10.1.0.0/16, "fd00::/8", loopback]\n', 'r.yaml').http.trustProxy).toEqual(['127.0.0.1', '10.1.0.0/16', 'fd00::/8', 'loopback']);
    // In full mode, one named host on the node subnet is the proxy; a range beside the node subnets is fine too.
    const full = 'dhcp:\n  mode: full\n  interface: eth1\n  server_ip: 10.0.0.1\n  subnets:\n    - cidr: 10.0.0.0/24\n';
    expect(parseConfig(`http:\n  trust_proxy: [10.0.0.5, 10.1.0.0/16, loopback]\n${full}`, 'r.yaml').http.trustProxy).toEqual(['10.0.0.5', '10.1.0.0/16', 'loopback']);
  });

  it('naming an interface turns DHCP on in the safe proxy mode', () => {
    const c = parseConfig('dhcp:\n  interface: eth1\n  server_ip: 10.0.0.1\n', 'r.yaml');
    expect(c.dhcp).toMatchObject({ mode: 'proxy', interface: 'eth1', serverIp: '10.0.0.1', port: 67, proxyPort: 4011 });
    expect(c.http.publicUrl).toBe('http://10.0.0.1:8080');
  });

  it('a missing file is a CONFIG_NOT_FOUND error naming it', async () => {
    const { loadConfig } = await import('../../../server/config.js');
    expect(() => loadConfig('/nonexistent/rackseed.yaml')).toThrow(/\/nonexistent\/rackseed\.yaml: cannot read/);
  });

  it('an IPv6 listen address is bracketed in the URL nodes are given; :: means this host', () => {
    expect(parseConfig('http:\n  listen: "::1"\n', 'r.yaml').http.publicUrl).toBe('http://[::1]:8080');
    expect(parseConfig('http:\n  listen: "::"\n', 'r.yaml').http.publicUrl).toBe('http://[::1]:8080');
    expect(parseConfig('http:\n  listen: 10.0.0.1\n', 'r.yaml').http.publicUrl).toBe('http://10.0.0.1:8080');
    // HTTP off is fine when another server serves the machines.
    expect(parseConfig('http:\n  enabled: false\n  public_url: http://10.0.0.2:8080\ndhcp:\n  interface: eth1\n  server_ip: 10.0.0.1\n', 'r.yaml').http.publicUrl).toBe('http://10.0.0.2:8080');
  });

  it('public_url wins and loses its trailing slash', () => {
    expect(parseConfig('http:\n  public_url: http://boot.example:8080/\n', 'r.yaml').http.publicUrl).toBe('http://boot.example:8080');
  });
});

describe('config: errors name the file, the line, the key and what was expected', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['unknown key (typo)', 'http:\n  prot: 80\n', /^\/etc\/rackseed\/rackseed\.yaml:2 http\.prot: unknown key "prot" \(did you mean "port"\?/],
    ['wrong type', 'log:\n  level: info\nhttp:\n  port: "eighty"\n', /rackseed\.yaml:4 http\.port: expected number, got string/],
    ['port out of range', 'tftp:\n  port: 70000\n', /rackseed\.yaml:2 tftp\.port: .*65535/],
    ['bad enum', 'dhcp:\n  mode: sometimes\n', /rackseed\.yaml:2 dhcp\.mode: .*"off"/],
    ['trust_proxy everyone', 'http:\n  trust_proxy: [true]\n', /rackseed\.yaml:2 http\.trust_proxy\[0\]: expected string/],
    ['trust_proxy not an address', 'http:\n  trust_proxy: [proxy.example]\n', /rackseed\.yaml:2 http\.trust_proxy\[0\]: expected an address, a subnet/],
    ['trust_proxy everyone as a subnet', 'http:\n  trust_proxy: [0.0.0.0/0]\n', /rackseed\.yaml:2 http\.trust_proxy\[0\]: expected an address, a subnet/],
    [
      'trust_proxy over the node subnet in full mode',
      'http:\n  trust_proxy: [127.0.0.1, uniquelocal]\ndhcp:\n  mode: full\n  interface: eth1\n  server_ip: 10.0.0.1\n  subnets:\n    - cidr: 10.0.0.0/24\n',
      /rackseed\.yaml:2 http\.trust_proxy\[1\]: "uniquelocal" covers the node subnet 10\.0\.0\.0\/24: a node could then claim another node's address/,
    ],
    [
      'trust_proxy over the node subnet as IPv4-mapped IPv6 (Express matches IPv4 clients that way)',
      'http:\n  trust_proxy: ["::ffff:10.0.0.0/104"]\ndhcp:\n  mode: full\n  interface: eth1\n  server_ip: 10.0.0.1\n  subnets:\n    - cidr: 10.0.0.0/24\n',
      /rackseed\.yaml:2 http\.trust_proxy\[0\]: "::ffff:10\.0\.0\.0\/104" covers the node subnet 10\.0\.0\.0\/24/,
    ],
    [
      'trust_proxy inside the node subnet',
      'http:\n  trust_proxy: [10.0.0.16/28]\ndhcp:\n  mode: full\n  interface: eth1\n  server_ip: 10.0.0.1\n  subnets:\n    - cidr: 10.0.0.0/24\n',
      /http\.trust_proxy\[0\]: "10\.0\.0\.16\/28" covers the node subnet/,
    ],
    ['full mode without interface', 'dhcp:\n  mode: full\n  server_ip: 10.0.0.1\n', /rackseed\.yaml:1 dhcp\.interface: required when mode is "full"/],
    ['proxy mode without server_ip', 'dhcp:\n  mode: proxy\n  interface: eth1\n', /dhcp\.server_ip: required when mode is "proxy"/],
    ['bad IPv4', 'dhcp:\n  interface: eth1\n  server_ip: 10.0.0.300\n', /rackseed\.yaml:3 dhcp\.server_ip: expected an IPv4 address/],
    ['provisioning path escaping data_dir', 'provisioning:\n  kernel: ../../etc/shadow\n', /rackseed\.yaml:2 provisioning\.kernel: expected a relative path/],
    ['unknown store kind', 'store:\n  kind: oracle\n', /rackseed\.yaml:2 store\.kind/],
    ['interface named (proxy implied) without server_ip', 'dhcp:\n  interface: eth1\n', /dhcp\.server_ip: required when mode is "proxy"/],
    ['full mode without subnets', 'dhcp:\n  mode: full\n  interface: eth1\n  server_ip: 10.0.0.1\n', /dhcp\.subnets: full mode needs at least one subnet/],
    ['server_ip outside every subnet', 'dhcp:\n  mode: full\n  interface: eth1\n  server_ip: 10.9.0.1\n  subnets:\n    - cidr: 10.0.0.0/24\n', /rackseed\.yaml:4 dhcp\.server_ip: 10\.9\.0\.1 is in none of the subnets/],
    ['bad cidr', 'dhcp:\n  mode: full\n  interface: eth1\n  server_ip: 10.0.0.1\n  subnets:\n    - cidr: 10.0.0.1/24\n', /rackseed\.yaml:6 dhcp\.subnets\[0\]\.cidr: expected a subnet/],
    ['an IPv6 public_url (nodes boot over IPv4)', 'http:\n  public_url: "http://[2001:db8::1]:8080"\n', /rackseed\.yaml:2 http\.public_url: nodes boot and install over IPv4/],
    ['any free HTTP port with DHCP on and no public_url', 'http:\n  port: 0\ndhcp:\n  mode: proxy\n  interface: eth1\n  server_ip: 10.0.0.1\n', /rackseed\.yaml(:\d+)? http\.public_url: required when http\.port is 0 and DHCP is on/],
    ['pool holding server_ip', 'dhcp:\n  mode: full\n  interface: eth1\n  server_ip: 10.0.0.1\n  subnets:\n    - cidr: 10.0.0.0/24\n      pool: { start: 10.0.0.1, end: 10.0.0.99 }\n', /rackseed\.yaml:7 dhcp\.subnets\[0\]\.pool: the pool 10\.0\.0\.1-10\.0\.0\.99 holds server_ip 10\.0\.0\.1: leave it out of the range/],
    ['pool holding a router', 'dhcp:\n  mode: full\n  interface: eth1\n  server_ip: 10.0.0.1\n  subnets:\n    - cidr: 10.0.0.0/24\n    - cidr: 10.0.5.0/24\n      pool: { start: 10.0.5.1, end: 10.0.5.99 }\n      routers: [10.0.5.1]\n', /rackseed\.yaml:8 dhcp\.subnets\[1\]\.pool: the pool 10\.0\.5\.1-10\.0\.5\.99 holds router 10\.0\.5\.1/],
    ['pool holding the broadcast address', 'dhcp:\n  mode: full\n  interface: eth1\n  server_ip: 10.0.0.1\n  subnets:\n    - cidr: 10.0.0.0/24\n      pool: { start: 10.0.0.100, end: 10.0.0.255 }\n', /holds the broadcast address 10\.0\.0\.255/],
    ['pool outside its subnet', 'dhcp:\n  mode: full\n  interface: eth1\n  server_ip: 10.0.0.1\n  subnets:\n    - cidr: 10.0.0.0/24\n      pool: { start: 10.0.1.10, end: 10.0.1.20 }\n', /rackseed\.yaml:7 dhcp\.subnets\[0\]\.pool: the pool must lie inside 10\.0\.0\.0\/24/],
    ['overlapping subnets', 'dhcp:\n  mode: full\n  interface: eth1\n  server_ip: 10.0.0.1\n  subnets:\n    - cidr: 10.0.0.0/16\n    - cidr: 10.0.5.0/24\n', /dhcp\.subnets\[1\]\.cidr: overlaps subnets\[0\]/],
    ['YAML syntax error', 'http: [\n', /^\/etc\/rackseed\/rackseed\.yaml:2: YAML syntax error/],
    ['duplicate key', 'http:\n  port: 1\n  port: 2\n', /rackseed\.yaml:3: YAML syntax error: Map keys must be unique/],
    ['top-level typo', 'inventroy: x.yaml\n', /rackseed\.yaml:1 inventroy: unknown key "inventroy" \(did you mean "inventory"\?/],
    ['a host name to listen on', 'http:\n  listen: boot.example\n', /rackseed\.yaml:2 http\.listen: expected an IPv4 or IPv6 address of this host, 0\.0\.0\.0 or ::/],
    ['a TFTP transfer limit of 0', 'tftp:\n  max_transfers_per_client: 0\n', /rackseed\.yaml:2 tftp\.max_transfers_per_client: /],
    ['a bad TFTP listen address', 'tftp:\n  listen: 10.0.0.300\n', /rackseed\.yaml:2 tftp\.listen: expected an IPv4 or IPv6 address/],
    ['subnets in proxy mode (unused there)', 'dhcp:\n  mode: proxy\n  interface: eth1\n  server_ip: 10.0.0.1\n  subnets:\n    - cidr: 10.0.0.0/24\n', /rackseed\.yaml:5 dhcp\.subnets: used only in full mode/],
    ['HTTP off while DHCP sends machines to it', 'http:\n  enabled: false\ndhcp:\n  mode: proxy\n  interface: eth1\n  server_ip: 10.0.0.1\n', /http\.enabled: DHCP is on and sends machines to this server over HTTP/],
  ];
  it.each(cases)('%s', (_name, text, expected) => {
    const e = errorOf(text);
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toMatch(expected);
  });
});

describe('config: torrent (tracker and seeder)', () => {
  it('defaults: on, seeder on 6881, Luna-like 20 s announces with up to 50 peers, 3 neighbours per node', () => {
    expect(parseConfig('', 'r.yaml').torrent).toEqual({
      enabled: true,
      seedPort: 6881,
      announceIntervalSeconds: 20,
      startupAnnounceSeconds: 10,
      numwant: 50,
      neighbours: 3,
      peerTtlSeconds: 300,
      uploadSlots: 16,
      seederRestartSeconds: 5,
      seederHungSeconds: 30,
      webseedRateMbitWhileSeeding: 16,
    });
  });

  it('every key can be set', () => {
    const c = parseConfig('torrent:\n  enabled: false\n  seed_port: 0\n  announce_interval_seconds: 10\n  startup_announce_seconds: 0\n  numwant: 30\n  neighbours: 0\n  peer_ttl_seconds: 60\n  upload_slots: 8\n  seeder_restart_seconds: 600\n  seeder_hung_seconds: 120\n  webseed_rate_mbit_while_seeding: 0\n', 'r.yaml');
    expect(c.torrent).toEqual({ enabled: false, seedPort: 0, announceIntervalSeconds: 10, startupAnnounceSeconds: 0, numwant: 30, neighbours: 0, peerTtlSeconds: 60, uploadSlots: 8, seederRestartSeconds: 600, seederHungSeconds: 120, webseedRateMbitWhileSeeding: 0 });
  });

  it.each([
    ['unknown key', 'torrent:\n  seed_prot: 1\n', /rackseed\.yaml:2 torrent\.seed_prot: unknown key/],
    ['port out of range', 'torrent:\n  seed_port: 70000\n', /rackseed\.yaml:2 torrent\.seed_port: .*65535/],
    ['interval too short', 'torrent:\n  announce_interval_seconds: 1\n', /torrent\.announce_interval_seconds/],
    ['a negative startup window', 'torrent:\n  startup_announce_seconds: -1\n', /rackseed\.yaml:2 torrent\.startup_announce_seconds/],
    ['a single neighbour (a chain: every piece through one link)', 'torrent:\n  neighbours: 1\n', /rackseed\.yaml:2 torrent\.neighbours: must be 0 \(off\) or at least 2/],
    ['ttl shorter than two intervals', 'torrent:\n  announce_interval_seconds: 60\n  peer_ttl_seconds: 90\n', /torrent\.peer_ttl_seconds: must be at least twice announce_interval_seconds \(120\)/],
  ])('%s is refused', (_what, text, re) => {
    expect(errorOf(text).message).toMatch(re);
  });
});
