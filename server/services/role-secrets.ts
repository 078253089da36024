import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RackseedError } from '../model/errors.js';
import type { ResolvedNode } from '../model/inventory.js';

/**
 * Secrets a role needs on every node that has it, made once by the server and kept under <dataDir>/secrets (0600):
 *
 *   munge.key   1024 random bytes, base64 (Slurm's munge key; nodes decode it, so the key file holds these bytes)
 *   k3s-token   the K3s join token
 *   k3s-node-password-key  the key each node's K3s node password is derived from (HMAC-SHA256 of the node's name):
 *               the same password after a reimage, which K3s requires of a node that comes back under its name
 *
 * Each reaches a node's pillar only when the node has the role that uses it: a Slurm compute node never sees the
 * K3s token, a K3s node never sees the munge key. An operator may replace a file with their own value (an existing
 * cluster's munge key, base64-encoded) before the first run.
 */

export interface RoleSecrets {
  mungeKeyB64: string;
  k3sToken: string;
  /** This node's own K3s node password (derived per node: no node sees another's). */
  k3sNodePassword: string;
}

const MUNGE_KEY_BYTES = 1024;
/** munged refuses keys shorter than this. */
const MUNGE_MIN_BYTES = 32;

export const isSlurmRole = (role: string): boolean => role.startsWith('slurm-');
export const isK3sRole = (role: string): boolean => role === 'k3s' || role.startsWith('k3s-');

/** The pillar part a node with these roles gets, from secrets already made. Pure. */
export function secretsForRoles(roles: readonly string[], secrets: Partial<RoleSecrets>): Record<string, unknown> {
  const out: Record<string, string> = {};
  if (roles.some(isSlurmRole) && secrets.mungeKeyB64 !== undefined) out['munge_key_b64'] = secrets.mungeKeyB64;
  if (roles.some(isK3sRole) && secrets.k3sToken !== undefined) out['k3s_token'] = secrets.k3sToken;
  if (roles.some(isK3sRole) && secrets.k3sNodePassword !== undefined) out['k3s_node_password'] = secrets.k3sNodePassword;
  return Object.keys(out).length === 0 ? {} : { secrets: out };
}

/**
 * The role secrets for one node, each made on first need: `{ secrets: { munge_key_b64 } }` for slurm-* roles,
 * `{ secrets: { k3s_token, k3s_node_password } }` for k3s roles, `{}` for a node with neither.
 */
export function rolePillar(node: Pick<ResolvedNode, 'roles' | 'name'>, dataDir: string): Record<string, unknown> {
  const secrets: Partial<RoleSecrets> = {};
  if (node.roles.some(isSlurmRole)) secrets.mungeKeyB64 = mungeKey(dataDir);
  if (node.roles.some(isK3sRole)) {
    secrets.k3sToken = k3sToken(dataDir);
    secrets.k3sNodePassword = k3sNodePassword(dataDir, node.name);
  }
  return secretsForRoles(node.roles, secrets);
}

export function secretsDir(dataDir: string): string {
  return path.join(dataDir, 'secrets');
}

export function mungeKey(dataDir: string): string {
  const value = readOrCreate(path.join(secretsDir(dataDir), 'munge.key'), () => randomBytes(MUNGE_KEY_BYTES).toString('base64'));
  const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(value) && value.length % 4 === 0 ? Buffer.from(value, 'base64').length : 0;
  if (bytes < MUNGE_MIN_BYTES) {
    throw new RackseedError('CONFIG_INVALID', `${path.join(secretsDir(dataDir), 'munge.key')}: expected a base64-encoded munge key of at least ${MUNGE_MIN_BYTES} bytes`);
  }
  return value;
}

export function k3sToken(dataDir: string): string {
  const file = path.join(secretsDir(dataDir), 'k3s-token');
  const value = readOrCreate(file, () => randomBytes(32).toString('hex'));
  if (!/^[\x21-\x7e]+$/.test(value)) throw new RackseedError('CONFIG_INVALID', `${file}: the K3s token must be one word of printable characters`);
  return value;
}

/** A node's K3s node password: HMAC-SHA256 of its name under a key kept in the secrets directory. */
export function k3sNodePassword(dataDir: string, nodeName: string): string {
  const key = readOrCreate(path.join(secretsDir(dataDir), 'k3s-node-password-key'), () => randomBytes(32).toString('hex'));
  return createHmac('sha256', key).update(nodeName).digest('hex');
}

/**
 * The secret in `file`, made by `make` if the file does not exist yet. Creation is atomic and happens once even
 * with several servers or processes racing: the value is written to a private temporary file and hard-linked into
 * place, which fails if another writer got there first (then its value is used).
 */
function readOrCreate(file: string, make: () => string): string {
  const existing = readSecret(file);
  if (existing !== undefined) return existing;
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  chmodSync(path.dirname(file), 0o700);
  const temporary = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(temporary, `${make()}\n`, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(temporary, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(temporary);
  }
  const made = readSecret(file);
  if (made === undefined) throw new RackseedError('CONFIG_INVALID', `${file}: could not be created`);
  return made;
}

function readSecret(file: string): string | undefined {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if ((mode & 0o077) !== 0) {
    throw new RackseedError('CONFIG_INVALID', `${file}: a secret must not be readable by group or others (chmod 600)`, { file });
  }
  const value = readFileSync(file, 'utf8').trim();
  if (value === '') throw new RackseedError('CONFIG_INVALID', `${file}: is empty`, { file });
  return value;
}
