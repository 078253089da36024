import { describe, expect, it } from 'vitest';
import { parseIbPorts, parseIbstat, parseSysfsPortDump } from '../../server/readiness/parsers/infiniband.js';
import { parseKubectlNode } from '../../server/readiness/parsers/kubectl.js';
import {
  detectNvidiaFormat,
  mergeComputeCaps,
  parseNvidiaSmi,
  parseNvidiaSmiCsv,
  parseNvidiaSmiQueryText,
  parseNvidiaSmiXml,
} from '../../server/readiness/parsers/nvidia-smi.js';
import { classifySlurmState, parseScontrolPing, parseScontrolShowNode, parseSinfoNodes } from '../../server/readiness/parsers/slurm.js';
import { parseXidLog } from '../../server/readiness/parsers/xid.js';
import { child, childText, parseXml } from '../../server/readiness/parsers/xml.js';
import { fixture, sysfsDump } from '../fixtures/readiness/load.js';

describe('xml reader', () => {
  it('reads elements, attributes, text and entities, skipping the prolog, DOCTYPE and comments', () => {
    const doc = parseXml('<?xml version="1.0" ?>\n<!DOCTYPE a SYSTEM "a.dtd">\n<a x="1"><!-- c --><b>one &amp; two</b><b/><c><d>&#65;</d></c></a>');
    const a = child(doc, 'a');
    expect(a?.attrs).toEqual({ x: '1' });
    expect(a?.children.map((c) => c.name)).toEqual(['b', 'b', 'c']);
    expect(childText(a, 'b')).toBe('one & two');
    expect(childText(a, 'c', 'd')).toBe('A');
  });

  it('reads a numeric reference beyond Unicode as U+FFFD instead of throwing', () => {
    const doc = parseXml('<a x="&#x110000;"><b>&#1114112;|&#99999999999999999999;|&#x10FFFF;</b></a>');
    expect(child(doc, 'a')?.attrs).toEqual({ x: '\uFFFD' });
    expect(childText(doc, 'a', 'b')).toBe('\uFFFD|\uFFFD|\u{10FFFF}');
  });

  it('keeps what a truncated document had instead of throwing', () => {
    const doc = parseXml('<a><b>1</b><c><d>2');
    expect(childText(doc, 'a', 'b')).toBe('1');
    expect(childText(doc, 'a', 'c', 'd')).toBe('2');
  });
});

describe('nvidia-smi parsers (recorded outputs)', () => {
  it('detects the three formats and rejects the default table', () => {
    expect(detectNvidiaFormat(fixture('nvidia-smi/telegraf-a100-sxm4-v12-q-x.xml'))).toBe('xml');
    expect(detectNvidiaFormat(fixture('nvidia-smi/h100-80gb-hbm3-590.48.01-query-gpu-all-fields.csv'))).toBe('csv');
    expect(detectNvidiaFormat(fixture('nvidia-smi/gpud-titan-v-560.35.03-q.txt'))).toBe('text');
    expect(parseNvidiaSmi(fixture('nvidia-smi/gpud-geforce-525.125.06-fan-ERR-truncated.txt'))).toBeUndefined();
  });

  it('A100 XML: the GPU memory is the board total, not a MIG slice', () => {
    const r = parseNvidiaSmiXml(fixture('nvidia-smi/telegraf-a100-sxm4-v12-q-x.xml'));
    expect(r).toMatchObject({ format: 'xml', driverVersion: '535.54.03', cudaVersion: '12.2', attachedGpus: 4 });
    // The upstream file was trimmed to one <gpu> although the header says 4: we count what is listed.
    expect(r.gpus).toEqual([{ index: 0, name: 'NVIDIA A100-SXM4-80GB', busId: '00000000:01:00.0', memoryMiB: 81920 }]);
  });

  it('RTX 3060 XML: 12288 MiB, no pending retirement reported as N/A', () => {
    const r = parseNvidiaSmiXml(fixture('nvidia-smi/telegraf-rtx-3060-v12-q-x.xml'));
    expect(r.gpus[0]).toMatchObject({ name: 'NVIDIA GeForce RTX 3060', memoryMiB: 12288 });
    expect(r.gpus[0]?.retiredPagesPending).toBeUndefined();
  });

  it('old XML schema (Quadro P400, v10) and a fragment without driver (GTX 1070 Ti)', () => {
    const p400 = parseNvidiaSmiXml(fixture('nvidia-smi/telegraf-quadro-p400-q-x.xml'));
    expect(p400).toMatchObject({ driverVersion: '418.43', cudaVersion: '10.1' });
    expect(p400.gpus[0]).toMatchObject({ name: 'Quadro P400', memoryMiB: 1998 });
    const gtx = parseNvidiaSmiXml(fixture('nvidia-smi/telegraf-gtx-1070-ti-q-x.xml'));
    expect(gtx.driverVersion).toBeUndefined();
    expect(gtx.gpus[0]).toMatchObject({ name: 'GeForce GTX 1070 Ti', memoryMiB: 4096 });
  });

  it('H100 query-gpu CSV with 212 fields: name, units stripped, compute_cap and remapped rows', () => {
    const r = parseNvidiaSmiCsv(fixture('nvidia-smi/h100-80gb-hbm3-590.48.01-query-gpu-all-fields.csv'));
    expect(r).toMatchObject({ format: 'csv', driverVersion: '590.48.01', attachedGpus: 1 });
    expect(r.gpus).toEqual([
      { index: 0, name: 'NVIDIA H100 80GB HBM3', busId: '00000000:00:09.0', memoryMiB: 81559, computeCap: '9.0', remappedRowsPending: false, remappedRowsFailure: false },
    ]);
  });

  it('8x H100 -q text: every GPU with its bus id, memory and remapped rows', () => {
    const r = parseNvidiaSmiQueryText(fixture('nvidia-smi/gpud-h100-80gb-hbm3-x8-535.161.08-q.txt'));
    expect(r).toMatchObject({ format: 'text', driverVersion: '535.161.08', cudaVersion: '12.2', attachedGpus: 8 });
    expect(r.gpus).toHaveLength(8);
    expect(r.gpus[0]).toMatchObject({ index: 0, busId: '00000000:19:00.0', name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559, remappedRowsPending: false, remappedRowsFailure: false });
    expect(new Set(r.gpus.map((g) => g.memoryMiB))).toEqual(new Set([81559]));
  });

  it('TITAN V -q text (Volta): remapped rows N/A stay unknown', () => {
    const r = parseNvidiaSmiQueryText(fixture('nvidia-smi/gpud-titan-v-560.35.03-q.txt'));
    expect(r).toMatchObject({ driverVersion: '560.35.03', cudaVersion: '12.6', attachedGpus: 1 });
    expect(r.gpus[0]).toMatchObject({ name: 'NVIDIA TITAN V', memoryMiB: 12288 });
    expect(r.gpus[0]?.remappedRowsPending).toBeUndefined();
  });

  it('merges compute capabilities from the query CSV by bus id', () => {
    const r = parseNvidiaSmiXml(fixture('nvidia-smi/telegraf-rtx-3060-v12-q-x.xml'));
    const merged = mergeComputeCaps(r, 'index, pci.bus_id, compute_cap\n0, 00000000:2D:00.0, 8.6\n');
    expect(merged.gpus[0]?.computeCap).toBe('8.6');
    // An old driver answers the query with an error: nothing to merge, the report is unchanged.
    expect(mergeComputeCaps(r, 'Field "compute_cap" is not a valid field to query.\n')).toEqual(r);
  });
});

describe('infiniband parsers (recorded outputs)', () => {
  it('ibstat: one port per CA with state, physical state, rate and link layer', () => {
    const ports = parseIbstat(fixture('infiniband/gpud-ibstat.47.0.h100.some.down.0.txt'));
    expect(ports).toHaveLength(12);
    expect(ports[0]).toEqual({ device: 'mlx5_0', port: 1, state: 'Active', physState: 'LinkUp', rateGbps: 400, linkLayer: 'InfiniBand' });
    expect(ports.filter((p) => p.state === 'Down').map((p) => `${p.device} ${p.physState} ${p.rateGbps}`)).toEqual(['mlx5_2 Disabled 40', 'mlx5_7 Disabled 40', 'mlx5_8 Disabled 40']);
  });

  it('sysfs dump: the raw "4: ACTIVE" / "400 Gb/sec (4X NDR)" strings normalised like ibstat', () => {
    const ports = parseSysfsPortDump(sysfsDump('infiniband/gpud-sys-class-infiniband-h100'));
    expect(ports).toHaveLength(9);
    expect(ports[0]).toEqual({ device: 'mlx5_0', port: 1, state: 'Active', physState: 'LinkUp', rateGbps: 400, linkLayer: 'InfiniBand' });
    expect(ports.find((p) => p.device === 'mlx5_bond_0')).toMatchObject({ rateGbps: 200, linkLayer: 'Ethernet' });
  });

  it('parseIbPorts picks the format', () => {
    expect(parseIbPorts(fixture('infiniband/gpud-ibstat.47.0.h100.all.active.2.txt'))).toHaveLength(9);
    expect(parseIbPorts('mlx5_0|1|1: DOWN|3: Disabled|10 Gb/sec (4X SDR)|InfiniBand\n')).toEqual([
      { device: 'mlx5_0', port: 1, state: 'Down', physState: 'Disabled', rateGbps: 10, linkLayer: 'InfiniBand' },
    ]);
  });
});

describe('slurm parsers (recorded outputs)', () => {
  it('scontrol show node: state with flags and the reason running to the end of its line', () => {
    const nodes = parseScontrolShowNode(fixture('slurm/slonk-scontrol-show-node-h100-drain-allocated.txt'));
    expect(nodes.map((n) => n.node)).toEqual(['cluster-h100-9-78', 'cluster-h100-9-69', 'cluster-h100-9-79', 'cluster-h100-9-75']);
    expect(nodes[0]).toEqual({ node: 'cluster-h100-9-78', state: 'IDLE+DRAIN+MAINTENANCE+RESERVED', reason: 'Prolog error: 571 xid 13 errors [root@2023-12-24T06:51:08]' });
    expect(nodes[1]).toEqual({ node: 'cluster-h100-9-69', state: 'ALLOCATED+MAINTENANCE+RESERVED' });
  });

  it('sinfo %n,%T over 709 recorded nodes: every state classified, usable exactly for idle/mixed/allocated', () => {
    const nodes = parseSinfoNodes(fixture('slurm/vpenso-sinfo-h-o-n-T.txt'), ',');
    expect(nodes).toHaveLength(709);
    const byState = new Map<string, boolean>();
    for (const n of nodes) byState.set(n.state, classifySlurmState(n.state).usable);
    expect(Object.fromEntries(byState)).toEqual({
      idle: true,
      allocated: true,
      mixed: true,
      down: false,
      'down*': false,
      drained: false,
      'drained*': false,
      draining: false,
      'fail*': false,
    });
  });

  it.each([
    ['IDLE', true],
    ['MIXED', true],
    ['ALLOCATED+MAINTENANCE+RESERVED', true],
    ['IDLE+DRAIN+MAINTENANCE+RESERVED', false],
    ['DOWN+NOT_RESPONDING', false],
    ['IDLE+NOT_RESPONDING', false],
    ['idle~', false],
    ['idle*', false],
    ['mixed$', true],
    ['UNKNOWN', false],
    ['', false],
  ])('classifies %j as usable=%s', (state, usable) => {
    expect(classifySlurmState(state).usable).toBe(usable);
  });

  it('sinfo %N|%T|%E lines keep the reason, drop "none"', () => {
    expect(parseSinfoNodes('gpu01|idle|none\ngpu02|drained|GPU 3 missing|xid\n')).toEqual([
      { node: 'gpu01', state: 'idle' },
      { node: 'gpu02', state: 'drained', reason: 'GPU 3 missing|xid' },
    ]);
  });

  it('scontrol ping (format documented by Slurm; no recorded fixture)', () => {
    expect(parseScontrolPing('Slurmctld(primary) at head01 is UP\nSlurmctld(backup) at head02 is DOWN\n')).toEqual([
      { role: 'primary', controller: 'head01', up: true },
      { role: 'backup', controller: 'head02', up: false },
    ]);
  });
});

describe('kubectl and kernel log parsers', () => {
  it('kubectl get node -o json (SYNTHETIC fixtures, see SOURCES.md): Ready condition and labels', () => {
    const server = parseKubectlNode(fixture('kubectl/SYNTHETIC-k3s-server-ready.json'));
    expect(server).toMatchObject({ name: 'k3s01', ready: 'True', readyReason: 'KubeletReady', unschedulable: false });
    expect(server.labels['node-role.kubernetes.io/control-plane']).toBe('true');
    const agent = parseKubectlNode(fixture('kubectl/SYNTHETIC-k3s-agent-not-ready.json'));
    expect(agent).toMatchObject({ name: 'k3s02', ready: 'Unknown', readyReason: 'NodeStatusUnknown' });
    expect(() => parseKubectlNode('{"kind":"List","items":[]}')).toThrow(/kind Node/);
  });

  it('Xid events from a recorded kernel log', () => {
    const { events } = parseXidLog(fixture('dmesg/gpud-dmesg-xid-119-gsp-timeout.log'));
    expect(events).toHaveLength(5);
    expect(events[0]).toMatchObject({ pci: '0000:9b:00', xid: 119 });
    expect(events[0]?.message).toMatch(/^pid=2024380, name=nvidia-smi, Timeout after 6s/);
  });
});
