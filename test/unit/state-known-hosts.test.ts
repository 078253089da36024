import { describe, expect, it } from 'vitest';
import { findPinnedKey, fingerprint, hostKeyAlgorithms, parseKnownHostsLine, parsePublicKey, sameKey } from '../../server/state/transport/known-hosts.js';

// Made with `ssh-keygen -t ed25519` / `-t rsa -b 1024`; fingerprints as `ssh-keygen -lf` printed them.
const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAQr7c+P8B8eOnRHlFicJYfZncRQx006qN94PwHywoPa root@node01';
const ED25519_FP = 'SHA256:jV3Le1plBb5d9aHRKAvOHN7UwnDEMQsiNItAcoJ78Ps';
const RSA =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDa+Tleee/JnhZSdfJMQPDxKoSJaevOqBKcm80GAzPS0oaGLHcBs8HRN2a1bFHS4fS4h9od7p6bZoXQNA7RYyS1YZoTK5si3B140JtYKW1eFeVnzepqolU42Z3cfh5IcoSgVNeFPL71w0YH9tVP/hzaO1Lmhwz7ME1x0Dyf5TPS1w== r';
const RSA_FP = 'SHA256:4sJzEn3RpKKTvogzE8zWURCnw1dOSfHsU2V/VtLWxVA';
const ED25519_KEY = ED25519.split(' ').slice(0, 2).join(' ');
const RSA_KEY = RSA.split(' ').slice(0, 2).join(' ');

describe('host key pins', () => {
  it('parses a public key line and fingerprints it like ssh-keygen', () => {
    const k = parsePublicKey(ED25519);
    expect(k.type).toBe('ssh-ed25519');
    expect(k.blob.length).toBe(51);
    expect(fingerprint(k.blob)).toBe(ED25519_FP);
    expect(fingerprint(parsePublicKey(RSA).blob)).toBe(RSA_FP);
  });

  it('takes the key out of a known_hosts line too', () => {
    expect(parsePublicKey(`node01,10.0.0.1 ${ED25519_KEY}`).blob).toEqual(parsePublicKey(ED25519).blob);
  });

  it('refuses text that is not a key, and a key whose data names another type', () => {
    expect(() => parsePublicKey('')).toThrow(/not an SSH public key/);
    expect(() => parsePublicKey('ssh-ed25519 !!!')).toThrow(/not base64/);
    expect(() => parsePublicKey(`ssh-rsa ${ED25519_KEY.split(' ')[1]}`)).toThrow(/says ssh-rsa but its data is ssh-ed25519/);
    expect(() => parsePublicKey('ssh-ed25519 AAAA')).toThrow(/not an SSH key/);
  });

  it('parses known_hosts lines as node-identity writes them, with markers and comments', () => {
    expect(parseKnownHostsLine('# comment')).toBeUndefined();
    expect(parseKnownHostsLine('   ')).toBeUndefined();
    const e = parseKnownHostsLine(`node01,10.0.0.1 ${ED25519_KEY}`);
    expect(e?.hosts).toEqual(['node01', '10.0.0.1']);
    expect(e?.type).toBe('ssh-ed25519');
    expect(e?.marker).toBeUndefined();
    expect(parseKnownHostsLine(`@revoked node01 ${ED25519_KEY}`)?.marker).toBe('@revoked');
    expect(() => parseKnownHostsLine('node01 ssh-ed25519')).toThrow(/not a known_hosts line/);
  });

  it('finds the pin by name or address and port, skipping revoked and damaged lines', () => {
    const text = [
      '# pins',
      `@revoked node01 ${RSA_KEY}`,
      'garbage line',
      `node01,10.0.0.1 ${ED25519_KEY}`,
      `[node03]:2222 ${RSA_KEY}`,
      '',
    ].join('\n');
    expect(findPinnedKey(text, ['node01'])?.type).toBe('ssh-ed25519');
    expect(findPinnedKey(text, ['nodeX', '10.0.0.1'])?.type).toBe('ssh-ed25519');
    expect(findPinnedKey(text, ['NODE01'])?.type).toBe('ssh-ed25519');
    expect(findPinnedKey(text, ['node03'])).toBeUndefined();
    expect(findPinnedKey(text, ['node03'], 2222)?.type).toBe('ssh-rsa');
    expect(findPinnedKey(text, ['node01'], 2222)).toBeUndefined();
    expect(findPinnedKey(text, ['node02'])).toBeUndefined();
  });

  it('matches hashed entries (ssh-keygen -H)', () => {
    // `ssh-keygen -H` over "node02,10.1.0.2 <ed25519>" and "[node03]:2222 <rsa>".
    const text = [
      `|1|xmhd1ViEMFGZT+j/yXhK5OLObD8=|AkmsWrU2An2x12c87NlWvJGck7k= ${ED25519_KEY}`,
      `|1|bDg5uW+7y77g4FCitfdgFo7LNZo=|baHUmu+3J3nw0dmcKl/q18Ci6oM= ${ED25519_KEY}`,
      `|1|xHez89JDoFDjieifG8dnB1Ks2hc=|xiYshQ5oXSZY8m0PDDCQTEOiBS4= ${RSA_KEY}`,
    ].join('\n');
    expect(findPinnedKey(text, ['node02'])?.type).toBe('ssh-ed25519');
    expect(findPinnedKey(text, ['10.1.0.2'])?.type).toBe('ssh-ed25519');
    expect(findPinnedKey(text, ['node03'], 2222)?.type).toBe('ssh-rsa');
    expect(findPinnedKey(text, ['node03'])).toBeUndefined();
  });

  it('compares blobs exactly and offers the pinned type only', () => {
    const a = parsePublicKey(ED25519).blob;
    expect(sameKey(a, Buffer.from(a))).toBe(true);
    const b = Buffer.from(a);
    b[b.length - 1]! ^= 1;
    expect(sameKey(a, b)).toBe(false);
    expect(sameKey(a, parsePublicKey(RSA).blob)).toBe(false);
    expect(hostKeyAlgorithms('ssh-ed25519')).toEqual(['ssh-ed25519']);
    expect(hostKeyAlgorithms('ssh-rsa')).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  });
});
