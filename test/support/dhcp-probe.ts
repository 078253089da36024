/**
 * Runs INSIDE a test namespace (`ip netns exec NS node --import tsx dhcp-probe.ts SPEC_JSON`): sends DHCP
 * datagrams from port 68 and prints what came back, as one JSON line. Two modes:
 *   {"mode":"send","to":"255.255.255.255","packets":["<base64>",...],"listenMs":1500[,"port":67]}
 *   {"mode":"fuzz","to":"10.0.0.1","count":100000,"seed":1,"seeds":["<base64>",...]}
 * Fuzzing sends from an ephemeral port in bursts, with a pause between them so the kernel does not drop the
 * datagrams before the server ever sees them.
 */
import { createSocket } from 'node:dgram';
import { mutatedDatagram, prng, randomDatagram } from './fuzz.js';

interface SendSpec {
  mode: 'send';
  to: string;
  packets: string[];
  listenMs: number;
  /** The port to send from and listen on (68, a client's, by default; 67 listens as a relay would). */
  port?: number;
}
interface FuzzSpec {
  mode: 'fuzz';
  to: string;
  count: number;
  seed: number;
  seeds: string[];
}

const spec = JSON.parse(process.argv[2] ?? '{}') as SendSpec | FuzzSpec;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (spec.mode === 'send') {
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  const replies: Array<{ from: string; base64: string }> = [];
  socket.on('message', (msg, rinfo) => replies.push({ from: `${rinfo.address}:${rinfo.port}`, base64: msg.toString('base64') }));
  await new Promise<void>((resolve) => socket.bind(spec.port ?? 68, '0.0.0.0', () => resolve()));
  socket.setBroadcast(true);
  for (const p of spec.packets) {
    await new Promise<void>((resolve, reject) => socket.send(Buffer.from(p, 'base64'), 67, spec.to, (e) => (e ? reject(e) : resolve())));
  }
  await sleep(spec.listenMs);
  socket.close();
  process.stdout.write(`${JSON.stringify({ replies })}\n`);
} else {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '0.0.0.0', () => resolve()));
  const rand = prng(spec.seed);
  const seeds = spec.seeds.map((s) => new Uint8Array(Buffer.from(s, 'base64')));
  let sent = 0;
  let failed = 0;
  for (let i = 0; i < spec.count; i++) {
    const datagram = i % 2 === 0 ? randomDatagram(rand) : mutatedDatagram(rand, seeds[i % seeds.length]!);
    await new Promise<void>((resolve) =>
      socket.send(datagram, 67, spec.to, (e) => {
        if (e) failed++;
        else sent++;
        resolve();
      }),
    );
    if (i % 200 === 199) await sleep(5);
  }
  socket.close();
  process.stdout.write(`${JSON.stringify({ sent, failed })}\n`);
}
