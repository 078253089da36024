import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FACTS_SCRIPT, osFamilyOf, parseFacts, parseIpAddr, parseNvidiaSmiCsv, parseOsRelease } from '../../server/state/facts.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/facts');
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');

/**
 * The line `nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits` prints, made
 * from the real H100 capture (all fields, with header and units) by picking those three columns.
 */
function h100QueryLine(): string {
  const [header, row] = fixture('h100-80gb-hbm3-590.48.01-query-gpu-all-fields.csv').trim().split('\n');
  const names = header!.split(', ');
  const values = row!.split(', ');
  const pick = (name: string): string => values[names.indexOf(name)]!;
  return [pick('name'), pick('memory.total [MiB]').replace(/ MiB$/, ''), pick('driver_version')].join(', ');
}

/** Puts lines into one section of a recorded output. */
function withSection(output: string, section: string, lines: string[]): string {
  return output.replace(`@@rackseed-facts ${section}@@\n`, `@@rackseed-facts ${section}@@\n${lines.join('\n')}\n`);
}

describe('fact collection', () => {
  it('parses the output recorded on this Debian 12 machine', () => {
    expect(parseFacts(fixture('host-debian12.txt'))).toEqual({
      osFamily: 'debian',
      osId: 'debian',
      osRelease: '12',
      kernel: '6.18.44-fc-v595',
      arch: 'x86_64',
      cpus: 2,
      memoryMiB: 24105,
      hostname: 'vm',
      gpus: [],
      nics: [
        { name: 'eth0', mac: '02:fc:00:00:00:01', addresses: ['192.0.2.2', 'fd00::2', 'fe80::fc:ff:fe00:1'], state: 'up' },
        { name: 'ifb0', mac: '16:ca:dc:e7:fc:ee', addresses: [], state: 'down' },
        { name: 'ifb1', mac: 'be:70:20:ce:4a:5f', addresses: [], state: 'down' },
      ],
    });
  });

  it('parses the output recorded on an SSH test target (hostname and NIC from its namespace)', () => {
    const facts = parseFacts(fixture('target-debian12-netns.txt'));
    expect(facts.hostname).toBe('node01');
    expect(facts.nics).toEqual([{ name: 'rsrct0e', mac: 'ee:07:9d:d9:b6:bc', addresses: ['10.77.0.11', 'fe80::ec07:9dff:fed9:b6bc'], state: 'up' }]);
  });

  it('reads GPUs from the nvidia-smi query line (real H100 values), one per line', () => {
    const line = h100QueryLine();
    expect(line).toBe('NVIDIA H100 80GB HBM3, 81559, 590.48.01');
    const facts = parseFacts(withSection(fixture('host-debian12.txt'), 'gpus', Array.from({ length: 8 }, () => line)));
    expect(facts.gpus).toHaveLength(8);
    expect(facts.gpus[0]).toEqual({ model: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559, driver: '590.48.01' });
  });

  it('skips nvidia-smi lines it cannot read and leaves out a driver shown as N/A', () => {
    expect(parseNvidiaSmiCsv(['NVIDIA A10, [N/A], 535.129.03', 'garbage', 'Tesla T4, 15360, [N/A]', ''])).toEqual([{ model: 'Tesla T4', memoryMiB: 15360 }]);
  });

  it('reads os-release quoting and knows the OS families', () => {
    expect(parseOsRelease(['NAME="Rocky Linux"', "ID='rocky'", 'ID_LIKE="rhel centos fedora"', 'VERSION_ID="9.3"', 'X="a \\"b\\""', '# comment', 'bad line'])).toEqual({
      NAME: 'Rocky Linux',
      ID: 'rocky',
      ID_LIKE: 'rhel centos fedora',
      VERSION_ID: '9.3',
      X: 'a "b"',
    });
    expect(osFamilyOf('rocky', 'rhel centos fedora')).toBe('redhat');
    expect(osFamilyOf('ubuntu', 'debian')).toBe('debian');
    expect(osFamilyOf('mycorp', 'ubuntu debian')).toBe('debian');
    expect(osFamilyOf('alpine', '')).toBe('unknown');
  });

  it('reads `ip -o addr` including names with a peer suffix', () => {
    expect([...parseIpAddr(['5: veth1@if4    inet 10.0.0.1/24 scope global veth1\\ x', '1: lo    inet 127.0.0.1/8 scope host lo\\ y', 'junk']).entries()]).toEqual([
      ['veth1', ['10.0.0.1']],
      ['lo', ['127.0.0.1']],
    ]);
  });

  it('gives safe defaults when sections are missing, and ignores unknown sections', () => {
    const facts = parseFacts('@@rackseed-facts surprise@@\nID=nope\n@@rackseed-facts end@@\n');
    expect(facts).toEqual({ osFamily: 'unknown', osId: 'unknown', osRelease: '', kernel: '', arch: '', cpus: 0, memoryMiB: 0, hostname: '', gpus: [], nics: [] });
  });

  it('the script prints every section the parser reads, ending with "end"', () => {
    for (const s of ['os-release', 'uname', 'hostname', 'nproc', 'meminfo', 'gpus', 'links', 'addrs', 'end']) expect(FACTS_SCRIPT).toMatch(new RegExp(`\\ns ${s}[;\\n]`));
    expect(FACTS_SCRIPT).toContain('--query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits');
  });
});
