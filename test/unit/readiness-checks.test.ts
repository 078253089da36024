import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatReadyTable, rowFromReport } from '../../server/cli/commands/ready.js';
import { verdict } from '../../server/readiness/engine.js';
import { evaluateHosts, hostnameMatches } from '../../server/readiness/roles/base.js';
import { checksForNode, rolesToCheck } from '../../server/readiness/roles/index.js';
import { evaluateInfiniband } from '../../server/readiness/roles/infiniband.js';
import { evaluateK3sNode } from '../../server/readiness/roles/k3s.js';
import { compareVersions, gpuModelSpec } from '../../server/readiness/roles/nvidia-models.js';
import { evaluateNvidiaSmi, evaluateXid, nameHasModel, NVIDIA_SMI_COMMAND, parseNvidiaCollection, XID_COMMAND } from '../../server/readiness/roles/nvidia.js';
import { evaluateController, evaluateSlurmNode, SLURM_LOGIN_CHECKS } from '../../server/readiness/roles/slurm.js';
import type { Evidence } from '../../server/readiness/types.js';
import { context, FACTS, fixture, ok, sysfsDump } from '../fixtures/readiness/load.js';

function byCheck(evidence: Evidence[]): Record<string, Evidence> {
  return Object.fromEntries(evidence.map((e) => [e.check, e]));
}

function failingChecks(evidence: Evidence[]): string[] {
  return evidence.filter((e) => !e.pass).map((e) => e.check);
}

const H100_X8 = { gpu: { model: 'H100', count: 8, memoryMiB: 81559 } };

describe('nvidia checks over recorded nvidia-smi outputs', () => {
  it('8x H100 (-q, driver 535.161.08, CUDA 12.2, kernel 5.15) passes every check with the example inventory expectation', () => {
    const ev = evaluateNvidiaSmi(ok(fixture('nvidia-smi/gpud-h100-80gb-hbm3-x8-535.161.08-q.txt')), context({ hardware: H100_X8 }));
    expect(failingChecks(ev)).toEqual([]);
    expect(ev.map((e) => e.check)).toEqual(['nvidia.gpu_count', 'nvidia.gpu_model', 'nvidia.driver', 'nvidia.cuda', 'nvidia.kernel', 'nvidia.compute_capability', 'nvidia.memory', 'nvidia.memory_errors']);
    const e = byCheck(ev);
    expect(e['nvidia.gpu_count']).toMatchObject({ expected: '8', seen: '8' });
    expect(e['nvidia.driver']).toMatchObject({ expected: '>= 525.60', seen: '535.161.08' });
    expect(e['nvidia.cuda']).toMatchObject({ expected: '>= 12.0', seen: '12.2' });
    expect(e['nvidia.kernel']).toMatchObject({ expected: '>= 5.15', seen: '5.15.0-105-generic' });
    expect(e['nvidia.compute_capability']).toMatchObject({ seen: 'sm_90' });
  });

  it('the same 8x H100 node fails when the group expects 4 GPUs, or the kernel is 5.10', () => {
    const text = fixture('nvidia-smi/gpud-h100-80gb-hbm3-x8-535.161.08-q.txt');
    const four = byCheck(evaluateNvidiaSmi(ok(text), context({ hardware: { gpu: { model: 'H100', count: 4, memoryMiB: 81559 } } })));
    expect(four['nvidia.gpu_count']).toMatchObject({ pass: false, expected: '4', seen: '8' });
    const oldKernel = byCheck(evaluateNvidiaSmi(ok(text), context({ hardware: H100_X8, facts: { ...FACTS, kernel: '5.10.0-28-amd64' } })));
    expect(oldKernel['nvidia.kernel']).toMatchObject({ pass: false, seen: '5.10.0-28-amd64' });
    expect(oldKernel['nvidia.kernel']?.reason).toMatch(/kernel 5\.10\.0-28-amd64 is older than 5\.15/);
  });

  it('a group pinning data nvidia.driver must run exactly that driver', () => {
    const text = ok(fixture('nvidia-smi/gpud-h100-80gb-hbm3-x8-535.161.08-q.txt'));
    expect(byCheck(evaluateNvidiaSmi(text, context({ hardware: H100_X8, data: { nvidia: { driver: '535.161.08' } } })))['nvidia.driver_pin']).toMatchObject({ pass: true });
    const drift = byCheck(evaluateNvidiaSmi(text, context({ hardware: H100_X8, data: { nvidia: { driver: '535.183.01' } } })))['nvidia.driver_pin'];
    expect(drift).toMatchObject({ pass: false, expected: '535.183.01', seen: '535.161.08' });
  });

  it('H100 with a driver older than 525.60 (SYNTHETIC edit of the recorded -q output) fails driver and CUDA', () => {
    const ev = evaluateNvidiaSmi(ok(fixture('nvidia-smi/SYNTHETIC-h100-x8-driver-520.61.05-from-gpud-535.161.08-q.txt')), context({ hardware: H100_X8 }));
    expect(failingChecks(ev)).toEqual(['nvidia.driver', 'nvidia.cuda']);
    expect(byCheck(ev)['nvidia.driver']?.reason).toBe('driver 520.61.05 is older than 525.60, the minimum for NVIDIA H100 80GB HBM3');
    expect(byCheck(ev)['nvidia.cuda']?.reason).toMatch(/CUDA version 11\.8 is older than 12\.0/);
  });

  it('H100 query-gpu CSV: compute_cap 9.0 read from the output; CUDA is not in that output, so it fails rather than passes', () => {
    const ev = byCheck(evaluateNvidiaSmi(ok(fixture('nvidia-smi/h100-80gb-hbm3-590.48.01-query-gpu-all-fields.csv')), context({ hardware: { gpu: { model: 'H100', count: 1, memoryMiB: 81559 } } })));
    expect(ev['nvidia.compute_capability']).toMatchObject({ pass: true, seen: 'sm_90' });
    expect(ev['nvidia.memory']).toMatchObject({ pass: true, seen: '81559 MiB' });
    expect(ev['nvidia.cuda']).toMatchObject({ pass: false, seen: 'not reported' });
  });

  it('A100 80GB (XML, MIG enabled) passes with its expectation (one <gpu> in the trimmed upstream file)', () => {
    const ev = evaluateNvidiaSmi(ok(fixture('nvidia-smi/telegraf-a100-sxm4-v12-q-x.xml')), context({ hardware: { gpu: { model: 'A100', count: 1, memoryMiB: 81920 } } }));
    expect(failingChecks(ev)).toEqual([]);
    expect(byCheck(ev)['nvidia.compute_capability']?.seen).toBe('sm_80');
    expect(byCheck(ev)['nvidia.kernel']).toMatchObject({ pass: true, expected: '-' });
    // Its remapped rows and retired pages are N/A in MIG mode: nothing pending was seen, and the evidence says so.
    expect(byCheck(ev)['nvidia.memory_errors']).toMatchObject({ pass: true, seen: 'not reported (N/A)', reason: expect.stringMatching(/^nvidia-smi reports neither page retirement nor row remapping \(N\/A\) for GPU 0/) });
  });

  it('Volta (TITAN V, standing in for V100 which has no recorded fixture) passes: sm_70 is the minimum', () => {
    const ev = evaluateNvidiaSmi(ok(fixture('nvidia-smi/gpud-titan-v-560.35.03-q.txt')), context({ hardware: { gpu: { model: 'TITAN V', count: 1, memoryMiB: 12288 } } }));
    expect(failingChecks(ev)).toEqual([]);
    expect(byCheck(ev)['nvidia.compute_capability']?.seen).toBe('sm_70');
  });

  it.each([
    ['nvidia-smi/telegraf-quadro-p2000-v12-q-x.xml', 'Quadro P2000', 5120],
    ['nvidia-smi/telegraf-quadro-p400-q-x.xml', 'Quadro P400', 1998],
    ['nvidia-smi/telegraf-gtx-1070-ti-q-x.xml', 'GeForce GTX 1070 Ti', 4096],
  ])('Pascal sm_61 card %s (as a Titan Xp would) fails compute capability with a reason naming sm_61', (file, model, memoryMiB) => {
    const ev = evaluateNvidiaSmi(ok(fixture(file)), context({ hardware: { gpu: { model, count: 1, memoryMiB } } }));
    expect(failingChecks(ev)).toContain('nvidia.compute_capability');
    const cc = byCheck(ev)['nvidia.compute_capability'];
    expect(cc).toMatchObject({ seen: 'sm_61', expected: '>= 7.0 (sm_70)' });
    expect(cc?.reason).toBe(`${model} is sm_61 (compute capability 6.1), below the sm_70 PyTorch 2.x needs`);
  });

  it('a Titan Xp name maps to sm_61 in the model table', () => {
    expect(gpuModelSpec('NVIDIA TITAN Xp')?.computeCap).toBe('6.1');
    expect(gpuModelSpec('GeForce GTX TITAN X')?.computeCap).toBe('5.2');
    expect(gpuModelSpec('Tesla V100-SXM2-32GB')?.computeCap).toBe('7.0');
    expect(gpuModelSpec('NVIDIA A10G')?.computeCap).toBe('8.6');
    expect(gpuModelSpec('NVIDIA A100-SXM4-80GB')?.computeCap).toBe('8.0');
  });

  it('RTX 3060: the recorded 12 GB card passes a 12 GB order and fails an 8 GB one', () => {
    const xml = fixture('nvidia-smi/telegraf-rtx-3060-v12-q-x.xml');
    const as12 = evaluateNvidiaSmi(ok(xml), context({ hardware: { gpu: { model: 'RTX 3060', count: 1, memoryMiB: 12288 } } }));
    expect(failingChecks(as12)).toEqual([]);
    const as8 = byCheck(evaluateNvidiaSmi(ok(xml), context({ hardware: { gpu: { model: 'RTX 3060', count: 1, memoryMiB: 8192 } } })));
    expect(as8['nvidia.memory']).toMatchObject({ pass: false, seen: '12288 MiB' });
  });

  it('RTX 3060 8 GB (SYNTHETIC edit of the 12 GB recording) where 12 GB was ordered fails memory with the sizes in the reason', () => {
    const ev = evaluateNvidiaSmi(ok(fixture('nvidia-smi/SYNTHETIC-rtx-3060-8gb-from-telegraf-rtx-3060-v12-q-x.xml')), context({ hardware: { gpu: { model: 'RTX 3060', count: 1, memoryMiB: 12288 } } }));
    expect(failingChecks(ev)).toEqual(['nvidia.memory']);
    expect(byCheck(ev)['nvidia.memory']?.reason).toBe('GPU 0 (00000000:2D:00.0) NVIDIA GeForce RTX 3060 has 8192 MiB memory, the group ordered 12288 MiB');
  });

  it('wrong model: an A100 where H100s were ordered', () => {
    const ev = byCheck(evaluateNvidiaSmi(ok(fixture('nvidia-smi/telegraf-a100-sxm4-v12-q-x.xml')), context({ hardware: { gpu: { model: 'H100', count: 1, memoryMiB: 81920 } } })));
    expect(ev['nvidia.gpu_model']).toMatchObject({ pass: false, seen: '1x NVIDIA A100-SXM4-80GB' });
  });

  it('the model is matched as a whole token: L40S is no L40, an A100 no A10; H100 in "NVIDIA H100 80GB HBM3" is', () => {
    expect(nameHasModel('NVIDIA L40S', 'L40')).toBe(false);
    expect(nameHasModel('NVIDIA A100-SXM4-80GB', 'A10')).toBe(false);
    expect(nameHasModel('NVIDIA H200', 'H20')).toBe(false);
    expect(nameHasModel('NVIDIA H100 80GB HBM3', 'h100')).toBe(true);
    expect(nameHasModel('NVIDIA A100-SXM4-80GB', 'A100')).toBe(true);
    expect(nameHasModel('NVIDIA GeForce RTX 3060', 'RTX 3060')).toBe(true);
    const ev = byCheck(evaluateNvidiaSmi(ok(fixture('nvidia-smi/telegraf-a100-sxm4-v12-q-x.xml')), context({ hardware: { gpu: { model: 'A10', count: 1, memoryMiB: 81920 } } })));
    expect(ev['nvidia.gpu_model']).toMatchObject({ pass: false, seen: '1x NVIDIA A100-SXM4-80GB' });
  });

  it('pending row remap fails memory_errors', () => {
    const text = fixture('nvidia-smi/gpud-h100-80gb-hbm3-x8-535.161.08-q.txt');
    // The recorded output with the first GPU's "Pending : No" under Remapped Rows flipped, to exercise the rule.
    const at = text.indexOf('    Remapped Rows');
    const edited = text.slice(0, at) + text.slice(at).replace('Pending                           : No', 'Pending                           : Yes');
    const ev = byCheck(evaluateNvidiaSmi(ok(edited), context({ hardware: H100_X8 })));
    expect(ev['nvidia.memory_errors']).toMatchObject({ pass: false, reason: 'GPU 0 (00000000:19:00.0): row remap pending (needs a GPU reset)' });
  });

  it('nvidia-smi failing, or printing its default table, is a failed nvidia.smi check', () => {
    const failed = evaluateNvidiaSmi({ code: 9, stdout: '', stderr: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n" }, context({ hardware: H100_X8 }));
    expect(failed).toEqual([expect.objectContaining({ check: 'nvidia.smi', pass: false, reason: "nvidia-smi failed (exit 9): NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." })]);
    const table = evaluateNvidiaSmi(ok(fixture('nvidia-smi/gpud-geforce-525.125.06-fan-ERR-truncated.txt')), context({ hardware: H100_X8 }));
    expect(table).toEqual([expect.objectContaining({ check: 'nvidia.smi', pass: false, seen: 'unreadable output' })]);
  });

  it('the collection output (XML + compute_cap CSV) is read as one', () => {
    const out = `${fixture('nvidia-smi/telegraf-rtx-3060-v12-q-x.xml')}\n@@rackseed compute_cap@@\nindex, pci.bus_id, compute_cap\n0, 00000000:2D:00.0, 8.6\n`;
    const ev = byCheck(evaluateNvidiaSmi(ok(out), context({ hardware: { gpu: { model: 'RTX 3060', count: 1, memoryMiB: 12288 } } })));
    expect(ev['nvidia.compute_capability']).toMatchObject({ pass: true, seen: 'sm_86' });
  });

  it('compares versions numerically', () => {
    expect(compareVersions('535.161.08', '525.60')).toBeGreaterThan(0);
    expect(compareVersions('525.60.13', '525.60')).toBeGreaterThan(0);
    expect(compareVersions('525.60', '525.60.0')).toBe(0);
    expect(compareVersions('5.9.0', '5.15')).toBeLessThan(0);
  });
});

describe('nvidia Xid check over a recorded kernel log', () => {
  const OK_MARK = '\n@@rackseed kernel-log ok@@\n';
  it('hardware Xid 119 (GSP timeout) fails with the first event', () => {
    const [e] = evaluateXid(ok(fixture('dmesg/gpud-dmesg-xid-119-gsp-timeout.log') + OK_MARK));
    expect(e).toMatchObject({ check: 'nvidia.xid', pass: false, seen: 'Xid 119 on 0000:9b:00 (x5)' });
    expect(e?.reason).toMatch(/^5 hardware Xid event\(s\) since boot, first: Xid 119 on 0000:9b:00: pid=2024380/);
  });
  it('no Xid passes; application Xids are listed but pass; an unreadable log fails', () => {
    expect(evaluateXid(ok(OK_MARK))[0]).toMatchObject({ pass: true, seen: 'none' });
    expect(evaluateXid(ok(`[1.0] NVRM: Xid (PCI:0000:3b:00): 13, pid=1, Graphics Exception${OK_MARK}`))[0]).toMatchObject({ pass: true, seen: 'Xid 13 on 0000:3b:00 (application Xids only)' });
    expect(evaluateXid({ code: 1, stdout: '', stderr: 'dmesg: read kernel buffer failed: Operation not permitted' })[0]).toMatchObject({ pass: false, check: 'nvidia.xid' });
    expect(evaluateXid(ok(''))[0]).toMatchObject({ pass: false });
  });

  it('every shape drivers print: MIG-attributed and without the PCI: prefix; a line in no known shape fails', () => {
    const table: Array<[string, boolean, string]> = [
      // MIG: the GPU instance (and compute instance) after the address (NVIDIA's A100 memory error guide, gpud).
      ['NVRM: Xid (PCI:0000:01:00 GPU-I:05): 94, pid=7, Contained ECC error', false, 'Xid 94 on 0000:01:00'],
      ['NVRM: Xid (PCI:0000:3b:00 GPU-I:01 GPU-CI:02): 79, pid=9, name=a, GPU has fallen off the bus.', false, 'Xid 79 on 0000:3b:00'],
      // Older drivers: no PCI: prefix (gpud's xid.go).
      ['NVRM: Xid (0000:03:00): 79, pid=0, GPU has fallen off the bus.', false, 'Xid 79 on 0000:03:00'],
      ['NVRM: Xid (0000:03:00): 13, pid=1, Graphics Exception', true, 'Xid 13 on 0000:03:00 (application Xids only)'],
      ['NVRM: Xid (PCI:0000:3b:00 GPU-I:01): 43, pid=1, Ch 00000008', true, 'Xid 43 on 0000:3b:00 (application Xids only)'],
      ['NVRM: Xid (GPU 3): 79, something new', false, '1 Xid line(s) in an unknown format'],
    ];
    for (const [line, pass, seen] of table) {
      expect(evaluateXid(ok(`[12.5] ${line}${OK_MARK}`))[0], line).toMatchObject({ check: 'nvidia.xid', pass, seen });
    }
  });

  it('the real nvidia-smi collection command: the XML report, then the compute capabilities merged by bus id (a stand-in nvidia-smi prints the recorded outputs)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-nvsmi-'));
    try {
      const xml = path.join(dir, 'report.xml');
      writeFileSync(xml, fixture('nvidia-smi/telegraf-quadro-p2000-v12-q-x.xml'));
      // This XML version has no compute_cap field; the query answers it (the fixture's GPU, compute capability 6.1).
      writeFileSync(path.join(dir, 'caps.csv'), 'index, pci.bus_id, compute_cap\n0, 00000000:17:00.0, 6.1\n');
      writeFileSync(path.join(dir, 'nvidia-smi'), `#!/bin/sh\ncase "$*" in\n  "-q -x") cat '${xml}' ;;\n  --query-gpu=index,pci.bus_id,compute_cap*) cat '${path.join(dir, 'caps.csv')}' ;;\n  *) echo "unexpected: $*" >&2; exit 2 ;;\nesac\n`, { mode: 0o755 });
      const r = spawnSync('sh', ['-c', NVIDIA_SMI_COMMAND], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` } });
      expect(r.status, r.stderr).toBe(0);
      const report = parseNvidiaCollection(r.stdout);
      expect(report?.gpus.map((g) => [g.name, g.computeCap])).toEqual([['Quadro P2000', '6.1']]);
      // No nvidia-smi at all: the command's own "not found", which the check reports as such.
      const none = spawnSync('/bin/sh', ['-c', NVIDIA_SMI_COMMAND], { encoding: 'utf8', env: { ...process.env, PATH: '/nonexistent' } });
      expect(none.status).toBe(127);
      expect(none.stderr).toContain('nvidia-smi: command not found');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the real collection command keeps a hardware Xid that 600 later application Xids would have pushed out', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rackseed-xid-'));
    try {
      const lines = ['[10.0] NVRM: Xid (PCI:0000:18:00): 79, pid=0, GPU has fallen off the bus.'];
      // Application Xids in all three shapes: each is told apart by the command, so none crowds the 79 out.
      for (let i = 0; i < 600; i++) {
        const where = ['PCI:0000:3b:00', 'PCI:0000:3b:00 GPU-I:01', '0000:3b:00'][i % 3];
        lines.push(`[${11 + i}.0] NVRM: Xid (${where}): 13, pid=${i}, Graphics Exception`);
      }
      writeFileSync(path.join(dir, 'kernel.log'), `${lines.join('\n')}\n`);
      writeFileSync(path.join(dir, 'dmesg'), `#!/bin/sh\ncat '${path.join(dir, 'kernel.log')}'\n`, { mode: 0o755 });
      const r = spawnSync('sh', ['-c', XID_COMMAND], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` } });
      expect(r.status).toBe(0);
      const [e] = evaluateXid({ code: 0, stdout: r.stdout, stderr: r.stderr });
      expect(e).toMatchObject({ pass: false, check: 'nvidia.xid' });
      expect(e?.seen).toMatch(/Xid 79 on 0000:18:00/);
      // A clean log: the marker alone, so "none", not "could not read".
      writeFileSync(path.join(dir, 'kernel.log'), '[1.0] eth0: link up\n');
      const clean = spawnSync('sh', ['-c', XID_COMMAND], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` } });
      expect(evaluateXid({ code: clean.status ?? -1, stdout: clean.stdout, stderr: clean.stderr })[0]).toMatchObject({ pass: true, seen: 'none' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('infiniband checks over recorded ibstat and sysfs', () => {
  const ib = (ports: number, rateGbps: number) => context({ hardware: { infiniband: { ports, rateGbps } } });

  it('8x NDR InfiniBand all active passes 8 @ 400 (ibstat and the sysfs dump)', () => {
    expect(evaluateInfiniband(ok(fixture('infiniband/gpud-ibstat.47.0.h100.all.active.2.txt')), ib(8, 400))).toEqual([
      expect.objectContaining({ pass: true, seen: '8 of 9 port(s) Active/LinkUp at 400 Gb/s' }),
    ]);
    expect(evaluateInfiniband(ok(sysfsDump('infiniband/gpud-sys-class-infiniband-h100')), ib(8, 400))[0]).toMatchObject({ pass: true });
  });

  it('down Ethernet ports beside 8 active 400G ports do not fail the fabric check', () => {
    expect(evaluateInfiniband(ok(fixture('infiniband/gpud-ibstat.47.0.h100.some.down.0.txt')), ib(8, 400))[0]).toMatchObject({ pass: true });
  });

  it('ports Down (Disabled or Polling) leave 6 of 8: fails naming them', () => {
    const [e] = evaluateInfiniband(ok(fixture('infiniband/gpud-ibstat.47.0.h100.some.down.1.txt')), ib(8, 400));
    expect(e).toMatchObject({ pass: false, seen: '6 of 12 port(s) Active/LinkUp at 400 Gb/s' });
    expect(e?.reason).toMatch(/^6 of 8 expected port\(s\) are Active\/LinkUp at 400 Gb\/s; not up: mlx5_\d+\/1 Down\/Disabled 40G, mlx5_\d+\/1 Down\/Disabled 40G; other rate: /);
    const [polling] = evaluateInfiniband(ok(fixture('infiniband/gpud-ibstat.47.0.h100.some.down.with.polling.1.txt')), ib(8, 400));
    expect(polling?.reason).toMatch(/Down\/Polling 40G/);
  });

  it('wrong rate: HDR 200G ports where NDR 400G was ordered fail; they pass an HDR order', () => {
    const text = fixture('infiniband/gpud-ibstat.47.0.a100.all.active.0.txt');
    const [e] = evaluateInfiniband(ok(text), ib(8, 400));
    expect(e).toMatchObject({ pass: false });
    expect(e?.reason).toMatch(/other rate: .*200G/);
    expect(evaluateInfiniband(ok(text), ib(8, 200))[0]).toMatchObject({ pass: true });
  });

  it('on a node with InfiniBand ports, an Ethernet port at the fabric\'s rate is not counted (an all-Ethernet RoCE node\'s ports are its fabric)', () => {
    // The recording has 8 InfiniBand ports and 1 Ethernet port, all Active at 200. One InfiniBand port taken down
    // leaves 7 fabric ports: the Ethernet port must not make up the eighth.
    const text = fixture('infiniband/gpud-ibstat.47.0.a100.all.active.0.txt');
    const at = text.indexOf("CA 'mlx5_8'");
    const down = text.slice(0, at) + text.slice(at).replace('State: Active', 'State: Down').replace('Physical state: LinkUp', 'Physical state: Disabled');
    const [e] = evaluateInfiniband(ok(down), ib(8, 200));
    expect(e).toMatchObject({ pass: false, seen: '7 of 9 port(s) Active/LinkUp at 200 Gb/s' });
    expect(e?.reason).toMatch(/^7 of 8 expected port\(s\) are Active\/LinkUp at 200 Gb\/s; not up: mlx5_8\/1 Down\/Disabled 200G; Ethernet, not counted: mlx5_\d+\/1 Active\/LinkUp 200G$/);
  });

  it('ibstat ending in ibpanic (exit 255) fails even though the ports it printed look active', () => {
    const [e] = evaluateInfiniband({ code: 255, stdout: fixture('infiniband/gpud-ibstat.39.0.a100.failed.ibpanic.exit-255.0.txt'), stderr: '' }, ib(8, 200));
    expect(e).toMatchObject({ pass: false, seen: 'exit 255' });
  });

  it('no InfiniBand device at all fails', () => {
    expect(evaluateInfiniband(ok(''), ib(1, 400))[0]).toMatchObject({ pass: false, seen: 'no ports' });
  });
});

describe('slurm checks', () => {
  const scontrol = fixture('slurm/slonk-scontrol-show-node-h100-drain-allocated.txt');
  it('a drained node fails with the Slurm reason; an allocated one passes', () => {
    const [drained] = evaluateSlurmNode(ok(scontrol), context({ node: 'cluster-h100-9-78' }));
    expect(drained).toMatchObject({ check: 'slurm.node_state', pass: false, seen: 'IDLE+DRAIN+MAINTENANCE+RESERVED' });
    expect(drained?.reason).toBe('Slurm reports cluster-h100-9-78 idle with drain: Reason=Prolog error: 571 xid 13 errors [root@2023-12-24T06:51:08]');
    expect(evaluateSlurmNode(ok(scontrol), context({ node: 'cluster-h100-9-69' }))[0]).toMatchObject({ pass: true, seen: 'ALLOCATED+MAINTENANCE+RESERVED' });
  });
  it.each([
    ['IDLE', true],
    ['MIXED', true],
    ['ALLOCATED', true],
    ['DOWN+NOT_RESPONDING', false],
    ['IDLE+DRAIN', false],
  ])('State=%s passes=%s', (state, pass) => {
    expect(evaluateSlurmNode(ok(`NodeName=gpu01 Arch=x86_64\n   State=${state} ThreadsPerCore=1\n`), context())[0]?.pass).toBe(pass);
  });
  it('a node the controller does not know fails as not registered', () => {
    expect(evaluateSlurmNode({ code: 1, stdout: 'Node gpu01 not found\n', stderr: '' }, context())[0]).toMatchObject({ pass: false, seen: 'not registered' });
  });
  it('"not found" elsewhere is not "not registered": a drain reason, or scontrol missing', () => {
    const drained = evaluateSlurmNode(ok('NodeName=gpu01 Arch=x86_64\n   State=IDLE+DRAIN ThreadsPerCore=1\n   Reason=GPU not found [root@2024-05-01T10:00:00]\n'), context())[0];
    expect(drained).toMatchObject({ pass: false, seen: 'IDLE+DRAIN' });
    expect(drained?.reason).toContain('Reason=GPU not found');
    const missing = evaluateSlurmNode({ code: 127, stdout: '', stderr: 'sh: 1: scontrol: not found\n' }, context())[0];
    expect(missing).toMatchObject({ pass: false });
    expect(missing?.seen).not.toBe('not registered');
  });
  it('controller: ping UP and slurmctld active pass; DOWN or inactive fail', () => {
    const good = evaluateController(ok('Slurmctld(primary) at head01 is UP\n@@rackseed slurmctld@@\nactive\n'), context({ node: 'head01' }));
    expect(failingChecks(good)).toEqual([]);
    const bad = evaluateController(ok('Slurmctld(primary) at head01 is DOWN\n@@rackseed slurmctld@@\ninactive\n'), context({ node: 'head01' }));
    expect(failingChecks(bad)).toEqual(['slurm.slurmctld', 'slurm.ping']);
  });

  // Line shape from Slurm's src/scontrol/scontrol.c (_print_ping): "Slurmctld(%s) at %s is %s", the mode primary,
  // then backup (two controllers) or backup1, backup2, ... (three or more).
  const ping = (...lines: Array<[string, string, 'UP' | 'DOWN']>) => lines.map(([mode, host, st]) => `Slurmctld(${mode}) at ${host} is ${st}\n`).join('');
  const controllerOn = (node: string, text: string) => evaluateController(ok(`${text}@@rackseed slurmctld@@\nactive\n`), context({ node })).find((e) => e.check === 'slurm.ping')!;
  const fromLogin = (text: string) => SLURM_LOGIN_CHECKS[0]!.evaluate(ok(text), context({ node: 'login01' }))[0]!;
  it.each([
    ['primary up, backup down', ping(['primary', 'ctl1', 'UP'], ['backup', 'ctl2', 'DOWN']), true, 'the backup controller ctl2 is DOWN; ctl1 (primary) serves the cluster'],
    ['the backup took over', ping(['primary', 'ctl1', 'DOWN'], ['backup', 'ctl2', 'UP']), true, 'the primary controller ctl1 is DOWN; ctl2 (backup) serves the cluster'],
    ['three controllers, the second backup serving', ping(['primary', 'ctl1', 'DOWN'], ['backup1', 'ctl2', 'DOWN'], ['backup2', 'ctl3', 'UP']), true, 'ctl3 (backup2) serves the cluster'],
    ['every controller down', ping(['primary', 'ctl1', 'DOWN'], ['backup', 'ctl2', 'DOWN']), false, 'no Slurm controller answers (slurmctld on ctl1 is DOWN, slurmctld on ctl2 is DOWN)'],
    ['one controller, up', ping(['primary', 'ctl1', 'UP']), true, undefined],
  ])('a login node, %s: passes while any controller answers', (_name, text, pass, reason) => {
    const ev = fromLogin(text);
    expect(ev.pass).toBe(pass);
    if (reason) expect(ev.reason).toContain(reason);
    else expect(ev).not.toHaveProperty('reason');
  });
  it('a controller node needs its own slurmctld to answer, whichever controller serves', () => {
    const failover = ping(['primary', 'ctl1', 'DOWN'], ['backup', 'ctl2', 'UP']);
    expect(controllerOn('ctl2', failover)).toMatchObject({ pass: true });
    expect(controllerOn('ctl1', failover)).toMatchObject({ pass: false, reason: 'slurmctld on this node (ctl1, the primary controller) does not answer; ctl2 serves the cluster' });
    // slurm.conf may name it fully qualified.
    expect(controllerOn('ctl2', ping(['primary', 'ctl1.cluster.example', 'UP'], ['backup', 'ctl2.cluster.example', 'DOWN']))).toMatchObject({ pass: false });
    expect(controllerOn('ctl1', ping(['primary', 'ctl1.cluster.example', 'UP'], ['backup', 'ctl2.cluster.example', 'DOWN']))).toMatchObject({ pass: true });
  });
});

describe('k3s checks (SYNTHETIC kubectl fixtures)', () => {
  it('a Ready server with its control-plane label and the declared labels passes', () => {
    const ev = evaluateK3sNode(ok(fixture('kubectl/SYNTHETIC-k3s-server-ready.json')), context({ node: 'k3s01', group: 'k3s', data: { k3s: { role: 'server', labels: { 'rackseed.io/group': 'k3s' } } } }), 'k3s-server');
    expect(failingChecks(ev)).toEqual([]);
  });
  it('a missing declared label (mapping or key=value list) fails naming it; a GPU node expects the GPU labels', () => {
    const server = ok(fixture('kubectl/SYNTHETIC-k3s-server-ready.json'));
    const mapping = byCheck(evaluateK3sNode(server, context({ node: 'k3s01', group: 'k3s', data: { k3s: { role: 'server', labels: { gpu: 'none' } } } }), 'k3s-server'));
    expect(mapping['k3s.labels']).toMatchObject({ pass: false, reason: 'gpu=none missing' });
    const list = byCheck(evaluateK3sNode(server, context({ node: 'k3s01', group: 'k3s', data: { k3s: { labels: ['rackseed.io/group=k3s', 'zone=a=b'] } } }), 'k3s-server'));
    expect(list['k3s.labels']).toMatchObject({ pass: false, reason: 'zone=a=b missing' });
    const gpu = byCheck(evaluateK3sNode(server, context({ node: 'k3s01', group: 'k3s', facts: { ...FACTS, gpus: [{ model: 'NVIDIA A10', memoryMiB: 23028 }] } }), 'k3s-server'));
    expect(gpu['k3s.labels']?.reason).toBe('nvidia.com/gpu.present=true missing, rackseed.io/gpu-count=1 missing');
  });
  it('a node of another group carries the wrong rackseed.io/group', () => {
    const ev = byCheck(evaluateK3sNode(ok(fixture('kubectl/SYNTHETIC-k3s-server-ready.json')), context({ node: 'k3s01', group: 'gpu' }), 'k3s-server'));
    expect(ev['k3s.labels']?.reason).toBe('rackseed.io/group is "k3s", expected "gpu"');
  });
  it('a NotReady agent fails with the kubelet reason', () => {
    const ev = byCheck(evaluateK3sNode(ok(fixture('kubectl/SYNTHETIC-k3s-agent-not-ready.json')), context({ node: 'k3s02', group: 'k3s', data: { k3s: { role: 'agent' } } }), 'k3s-agent'));
    expect(ev['k3s.node_ready']).toMatchObject({ pass: false, seen: 'Ready=Unknown', reason: 'node k3s02 is not Ready (NodeStatusUnknown: Kubelet stopped posting node status.)' });
    expect(ev['k3s.labels']).toMatchObject({ pass: true });
  });
  it('a server without the control-plane label fails labels', () => {
    const ev = byCheck(evaluateK3sNode(ok(fixture('kubectl/SYNTHETIC-k3s-agent-not-ready.json')), context({ node: 'k3s02', group: 'k3s' }), 'k3s-server'));
    expect(ev['k3s.labels']?.reason).toBe('node-role.kubernetes.io/control-plane=true missing');
  });
  it('kubectl NotFound means not registered', () => {
    const [e] = evaluateK3sNode({ code: 1, stdout: '', stderr: 'Error from server (NotFound): nodes "k3s02" not found\n' }, context({ node: 'k3s02' }), 'k3s-agent');
    expect(e).toMatchObject({ pass: false, seen: 'not registered' });
  });
  it('a missing kubectl is a failed command, not an unregistered node', () => {
    const [e] = evaluateK3sNode({ code: 127, stdout: '', stderr: 'sh: 1: kubectl: not found\n' }, context({ node: 'k3s02' }), 'k3s-agent');
    expect(e).toMatchObject({ pass: false });
    expect(e?.seen).not.toBe('not registered');
  });
});

describe('base checks', () => {
  it('host name: the node name, or qualified by a domain', () => {
    expect(hostnameMatches('gpu01\n', 'gpu01')).toBe(true);
    expect(hostnameMatches('gpu01.cluster.local', 'gpu01')).toBe(true);
    expect(hostnameMatches('localhost', 'gpu01')).toBe(false);
    expect(hostnameMatches('gpu010', 'gpu01')).toBe(false);
  });
  it('/etc/hosts must name every cluster node with its address', () => {
    const good = '127.0.0.1 localhost\n10.0.0.1 head01.cluster.local head01 # head\n10.0.1.11\tgpu01.cluster.local gpu01\n';
    expect(evaluateHosts(good, context())).toMatchObject({ pass: true, seen: '2 of 2 present' });
    expect(evaluateHosts('10.0.0.1 head01\n10.0.1.12 gpu01\n', context())).toMatchObject({ pass: false, reason: '/etc/hosts lacks 10.0.1.11 gpu01' });
  });
});

describe('roles and verdict', () => {
  it('declared hardware implies its role; the k3s role follows data.k3s.role; unknown roles say "no checks"', () => {
    expect(rolesToCheck(context({ roles: ['base', 'slurm-compute'], hardware: { gpu: { model: 'H100', count: 8, memoryMiB: 81559 }, infiniband: { ports: 8, rateGbps: 400 } } }))).toEqual([
      'base',
      'slurm-compute',
      'nvidia',
      'infiniband',
    ]);
    const roles = checksForNode(context({ roles: ['base', 'k3s', 'monitoring'], data: { k3s: { role: 'server' } } }));
    expect(roles.map((r) => r.role)).toEqual(['base', 'k3s-server', 'monitoring']);
    expect(roles[2]?.static).toEqual([{ check: 'monitoring.no_checks', role: 'monitoring', expected: '-', seen: 'no checks', pass: true, reason: 'rackseed declares no readiness checks for role "monitoring"' }]);
  });
  it('an nvidia role without hardware.gpu is a failing declaration; k3s without data.k3s.role is an agent (as its SLS)', () => {
    const [nvidia] = checksForNode(context({ roles: ['nvidia'] }));
    expect(nvidia?.static?.[0]).toMatchObject({ check: 'nvidia.expectation', pass: false });
    expect(checksForNode(context({ roles: ['k3s'] })).map((r) => r.role)).toEqual(['k3s-agent']);
  });
  it('a node with no roles and no hardware says that only SSH was checked; the ready table prints such notes', () => {
    const [none] = checksForNode(context({ roles: [] }));
    expect(none?.static).toEqual([{ check: 'roles.none', role: 'none', expected: '-', seen: 'no roles', pass: true, reason: 'group "gpu" declares no roles and no hardware: only SSH was checked' }]);
    const evidence = [{ check: 'base.ssh', role: 'base', expected: 'reachable over SSH', seen: 'reachable', pass: true }, ...(none?.static ?? [])];
    const text = formatReadyTable([rowFromReport({ node: 'gpu01', runId: 'r1', ready: true, state: 'ready', failing: [], summary: '', evidence, startedAt: 0, durationMs: 1 })]);
    expect(text).toContain('gpu01  roles.none (passes): group "gpu" declares no roles and no hardware: only SSH was checked');
    expect(text).not.toContain('base.ssh (passes)');
  });
  it('verdict: ready only with evidence that all passes; the summary names failing checks and reasons', () => {
    const pass = { check: 'a.b', role: 'a', expected: '1', seen: '1', pass: true };
    expect(verdict([pass])).toEqual({ ready: true, failing: [], summary: '' });
    expect(verdict([])).toMatchObject({ ready: false });
    const v = verdict([pass, { check: 'nvidia.memory', role: 'nvidia', expected: '12288', seen: '8192', pass: false, reason: 'too small' }, { check: 'x.y', role: 'x', expected: 'up', seen: 'down', pass: false }]);
    expect(v.ready).toBe(false);
    expect(v.failing.map((e) => e.check)).toEqual(['nvidia.memory', 'x.y']);
    expect(v.summary).toBe('readiness: nvidia.memory (too small); x.y (expected up, saw down)');
  });
});
