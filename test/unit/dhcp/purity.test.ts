import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The architecture rule: protocol code is pure, only server/net touches sockets and files.
const DIR = join(import.meta.dirname, '../../../server/protocol/dhcp');
const IO = /from\s+['"](node:)?(dgram|net|fs|fs\/promises|child_process|os|http|https|worker_threads)['"]/;

describe('server/protocol/dhcp purity', () => {
  it.each(readdirSync(DIR).filter((f) => f.endsWith('.ts')))('%s imports no Node I/O module', (file) => {
    expect(readFileSync(join(DIR, file), 'utf8')).not.toMatch(IO);
  });
});
