import { describe, expect, it } from 'vitest';
import { PlanError, renderPlan, type PlanInput } from '../../../server/protocol/plan.js';
import { expectGolden } from '../../support/golden.js';

// A real ed25519 key pair's shape; the values are fixed so the golden file is stable.
const HOST_PRIVATE = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n';
const HOST_PUBLIC = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG8m3gL3gB2Jw1vDq6u7n0cNcS0x4bY9Yq3rJ1f2kQ1h root@gpu001';
const SERVER_PUBLIC = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ4Q9n3y8t0bXvWl1gVt5m6d2s8kP0aR7cF4eH1uZ2yB rackseed';

const base = (): PlanInput => ({
  node: {
    name: 'gpu001',
    mac: '52:54:00:00:01:01',
    installedBoot: 'kernel',
    kernelArgs: ['console=ttyS0,115200', 'iommu=pt'],
    disk: {
      device: '/dev/vda',
      table: 'gpt',
      partitions: [
        { mount: '/boot/efi', size: '512M', fs: 'vfat' },
        { mount: 'swap', size: '2G', fs: 'swap' },
        { mount: '/', size: 'rest', fs: 'ext4' },
      ],
    },
  },
  image: { name: 'debian12', sha256: 'a'.repeat(64), size: 123456789 },
  urls: {
    torrent: 'http://10.0.0.1:8080/files/images/debian12/rootfs.tar.zst.torrent',
    http: 'http://10.0.0.1:8080/files/images/debian12/rootfs.tar.zst',
    report: 'http://10.0.0.1:8080/node/v1/report',
  },
  keys: { hostPrivate: HOST_PRIVATE, hostPublic: HOST_PUBLIC, authorized: [SERVER_PUBLIC] },
});

/** What `while read -r key value` makes of the text: the installer's view. */
function readAsInstaller(text: string): Array<[string, string]> {
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const at = l.indexOf(' ');
      return at < 0 ? [l, ''] : [l.slice(0, at), l.slice(at + 1)];
    });
}

describe('install plan rendering', () => {
  it('matches the golden plan (gpt, three partitions, installed_boot kernel)', () => {
    expectGolden('plan/gpu001.plan', renderPlan(base()));
  });

  it('matches the golden plan (dos table, one partition, installed_boot local with its kernel arguments)', () => {
    const input = base();
    input.node = { ...input.node, name: 'k3s01', installedBoot: 'local', disk: { device: '/dev/nvme0n1', table: 'dos', partitions: [{ mount: '/', size: 'rest', fs: 'ext4' }] } };
    expectGolden('plan/k3s01.plan', renderPlan(input));
  });

  it('is deterministic and ends with an end marker (a truncated plan is detectable)', () => {
    expect(renderPlan(base())).toBe(renderPlan(base()));
    expect(renderPlan(base()).endsWith('\nend\n')).toBe(true);
  });

  it('carries the private key as one base64 word that decodes to the file byte for byte', () => {
    const pairs = readAsInstaller(renderPlan(base()));
    const [, value] = pairs.find(([k]) => k === 'ssh_host_key')!;
    const [type, b64] = value.split(' ');
    expect(type).toBe('ed25519');
    expect(Buffer.from(b64!, 'base64').toString('utf8')).toBe(HOST_PRIVATE);
  });

  it('every line is one key and a value the installer can take as it is', () => {
    const keys = readAsInstaller(renderPlan(base())).map(([k]) => k);
    expect(new Set(keys)).toEqual(
      new Set(['version', 'hostname', 'net_mac', 'disk', 'table', 'part', 'image', 'torrent_url', 'http_url', 'sha256', 'size', 'report_url', 'ssh_host_key', 'ssh_host_pub', 'authorized_key', 'installed_boot', 'end']),
    );
  });
});

describe('install plan: kernel arguments', () => {
  it('are one line, for installed_boot local only (the iPXE script carries them for kernel)', () => {
    const local = { ...base(), node: { ...base().node, installedBoot: 'local' as const } };
    expect(readAsInstaller(renderPlan(local)).filter(([k]) => k === 'kernel_args')).toEqual([['kernel_args', 'console=ttyS0,115200 iommu=pt']]);
    expect(renderPlan(base())).not.toMatch(/kernel_args/);
    expect(renderPlan({ ...local, node: { ...local.node, kernelArgs: [] } })).not.toMatch(/kernel_args/);
  });

  it.each([
    ['a space inside one argument', 'quiet splash'],
    ['a single quote (the installer writes them between single quotes)', "x='y'"],
    ['a double quote', 'x="y"'],
    ['command substitution', '$(reboot)'],
    ['a backtick', '`id`'],
    ['a glob', 'x=*'],
    ['a semicolon', 'x;reboot'],
    ['a newline', 'quiet\nend'],
    ['an empty argument', ''],
  ])('refuses %s', (_label, arg) => {
    const input = { ...base(), node: { ...base().node, installedBoot: 'local' as const, kernelArgs: ['quiet', arg] } };
    expect(() => renderPlan(input)).toThrow(expect.objectContaining({ key: 'kernel_args' }));
  });
});

describe('install plan: the first-boot callback', () => {
  it('is two more lines before the end when given, and nothing when not', () => {
    const withCallback = { ...base(), callback: { bootedUrl: 'http://10.0.0.1:8080/node/v1/booted', token: 'cb1.booted.gpu001.c2lnbmF0dXJl' } };
    const lines = renderPlan(withCallback).trimEnd().split('\n');
    expect(lines.slice(-3)).toEqual(['booted_url http://10.0.0.1:8080/node/v1/booted', 'callback_token cb1.booted.gpu001.c2lnbmF0dXJl', 'end']);
    expect(renderPlan(base())).not.toMatch(/booted_url|callback_token/);
  });

  it('refuses a callback value that could split the line or smuggle in a word', () => {
    const bad = (bootedUrl: string, token: string) => () => renderPlan({ ...base(), callback: { bootedUrl, token } });
    expect(bad('http://10.0.0.1:8080/node/v1/booted\ndisk /dev/sdb', 'cb1.x.y.z')).toThrow(/booted_url/);
    expect(bad('http://10.0.0.1:8080/node/v1/booted', 'cb1.x.y.z rm')).toThrow(/callback_token/);
    expect(bad('http://10.0.0.1:8080/node/v1/booted', 'cb1$(reboot)')).toThrow(/callback_token/);
    expect(bad('file:///etc/passwd', 'cb1.x.y.z')).toThrow(/booted_url/);
  });
});

describe('install plan values that could split or inject a line are refused', () => {
  const cases: Array<[string, (p: PlanInput) => void, string]> = [
    ['newline in the host name', (p) => (p.node.name = 'gpu001\ndisk /dev/sda'), 'hostname'],
    ['host name with a space', (p) => (p.node.name = 'gpu 001'), 'hostname'],
    ['shell in the host name', (p) => (p.node.name = '$(reboot)'), 'hostname'],
    ['upper-case MAC', (p) => (p.node.mac = '52:54:00:00:01:0A'), 'net_mac'],
    ['disk outside /dev', (p) => (p.node.disk.device = '/tmp/x'), 'disk'],
    ['disk with a space', (p) => (p.node.disk.device = '/dev/vda /dev/vdb'), 'disk'],
    ['disk with ..', (p) => (p.node.disk.device = '/dev/../etc/passwd'), 'disk'],
    ['unknown table', (p) => ((p.node.disk as { table: string }).table = 'mbr'), 'table'],
    ['size with a unit the installer does not know', (p) => (p.node.disk.partitions[0]!.size = '512MB'), 'part'],
    ['rest before the last partition', (p) => (p.node.disk.partitions[0]!.size = 'rest'), 'part'],
    ['xfs (no mkfs.xfs in the installer)', (p) => (p.node.disk.partitions[2]!.fs = 'xfs'), 'part'],
    ['mount point with a newline', (p) => (p.node.disk.partitions[0]!.mount = '/boot\nend'), 'part'],
    ['mount point with ..', (p) => (p.node.disk.partitions[0]!.mount = '/boot/../../x'), 'part'],
    ['no root partition', (p) => (p.node.disk.partitions = [{ mount: '/data', size: 'rest', fs: 'ext4' }]), 'part'],
    ['root mounted twice', (p) => (p.node.disk.partitions[0] = { mount: '/', size: '1G', fs: 'ext4' }), 'part'],
    ['swap mounted as a directory', (p) => (p.node.disk.partitions[1]!.mount = '/swap'), 'part'],
    ['a vfat root (the installer mounts / as ext4)', (p) => (p.node.disk.partitions[2]!.fs = 'vfat'), 'part'],
    ['five partitions on a dos table (sfdisk drops the fifth)', (p) => ((p.node.disk as { table: string }).table = 'dos', p.node.disk.partitions.unshift(...['/a', '/b'].map((mount) => ({ mount, size: '1G', fs: 'ext4' as const })))), 'part'],
    ['a /dev/disk/by-id name (no udev in the installer)', (p) => (p.node.disk.device = '/dev/disk/by-id/nvme-eui'), 'disk'],
    ['image name with a slash', (p) => (p.image.name = '../etc'), 'image'],
    ['URL with a newline', (p) => (p.urls.http = 'http://10.0.0.1/x\nauthorized_key ssh-ed25519 AAAA evil'), 'http_url'],
    ['URL with a space', (p) => (p.urls.torrent = 'http://10.0.0.1/a b'), 'torrent_url'],
    ['URL with a backtick', (p) => (p.urls.report = 'http://10.0.0.1/`id`'), 'report_url'],
    ['not an http URL', (p) => (p.urls.http = 'file:///etc/shadow'), 'http_url'],
    ['sha256 too short', (p) => (p.image.sha256 = 'abc'), 'sha256'],
    ['size not an integer', (p) => (p.image.size = 1.5), 'size'],
    ['size zero', (p) => (p.image.size = 0), 'size'],
    ['public key with a newline', (p) => (p.keys.hostPublic = `${HOST_PUBLIC}\nauthorized_key x`), 'ssh_host_pub'],
    ['authorized key with a carriage return', (p) => (p.keys.authorized = [`${SERVER_PUBLIC}\rx`]), 'authorized_key'],
    ['authorized key of another type', (p) => (p.keys.authorized = ['ssh-rsa AAAAB3Nza rackseed']), 'authorized_key'],
    ['public key comment with a NUL', (p) => (p.keys.hostPublic = `${HOST_PUBLIC}\u0000`), 'ssh_host_pub'],
    ['unknown installed_boot', (p) => ((p.node as { installedBoot: string }).installedBoot = 'pxe'), 'installed_boot'],
  ];

  it.each(cases)('%s', (_label, mutate, key) => {
    const input = structuredClone(base());
    mutate(input);
    let err: unknown;
    try {
      renderPlan(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PlanError);
    expect((err as PlanError).key).toBe(key);
  });

  it('no accepted value ever adds a line: a line count follows from the input alone', () => {
    const p = base();
    const lines = renderPlan(p).split('\n').length;
    // 14 fixed lines + header + end + trailing empty, one per partition and per authorized key.
    expect(lines).toBe(17 + p.node.disk.partitions.length + p.keys.authorized.length);
  });
});
