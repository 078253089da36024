/**
 * Writer for the SQLite durability test: alternates events and leases, printing "acked N" only after write N
 * resolved, until the parent SIGKILLs it. Each write carries N so the parent can find it after reopening.
 */
import { openStore } from '../../server/store/index.js';

const path = process.argv[2];
if (!path) {
  process.stderr.write('usage: store-child.ts DBPATH\n');
  process.exit(2);
}

const store = await openStore({ kind: 'sqlite', path });
// A cap, so an orphan whose parent died does not write forever.
for (let n = 0; n < 1_000_000; n++) {
  const mac = `02:00:00:${[16, 8, 0].map((s) => ((n >> s) & 255).toString(16).padStart(2, '0')).join(':')}`;
  if (n % 2 === 0) {
    const r = await store.recordEvent({ node: `child-${n}`, event: { type: 'discovered', mac, facts: { n } } });
    if (!r.ok) throw new Error(r.error);
  } else {
    const ip = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
    const r = await store.claimLease({ ip, mac, state: 'bound', expiresAt: Date.now() + 3_600_000, hostname: `child-${n}` });
    if (!r.ok) throw new Error(`lease ${ip} held by ${r.heldBy.mac}`);
  }
  process.stdout.write(`acked ${n}\n`);
}
await store.close();
