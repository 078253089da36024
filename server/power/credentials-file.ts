import { parseSecretYaml } from '../util/secret-yaml.js';
import { z } from 'zod';
import { RackseedError } from '../model/errors.js';
import type { BmcCredential } from './types.js';

/**
 * The BMC credentials file, <dataDir>/secrets/bmc.yaml. Pure: parsing and lookup only (credentials.ts reads the
 * file and checks its mode). Sections are explicit, so a group and a node of the same name cannot be confused:
 *
 *   default: { username: admin, password: ... }
 *   groups:  { gpu: { username: root, password: ..., port: 623 } }
 *   nodes:   { gpu01: { username: root, password: ..., insecure: true } }
 */
const credential = z
  .object({
    username: z.string().min(1),
    password: z.string().min(1),
    port: z.number().int().min(1).max(65535).optional(),
    insecure: z.boolean().optional(),
    scheme: z.enum(['https', 'http']).optional(),
    cipher_suite: z.number().int().min(0).max(255).optional(),
  })
  .strict();

const fileSchema = z
  .object({
    default: credential.optional(),
    groups: z.record(z.string(), credential).optional(),
    nodes: z.record(z.string(), credential).optional(),
  })
  .strict();

type RawCredential = z.infer<typeof credential>;

export interface BmcCredentials {
  /** Where they came from, for error messages. */
  file: string;
  default?: BmcCredential;
  groups: Map<string, BmcCredential>;
  nodes: Map<string, BmcCredential>;
}

function toCredential(raw: RawCredential): BmcCredential {
  const { cipher_suite, ...rest } = raw;
  return { ...rest, ...(cipher_suite !== undefined ? { cipherSuite: cipher_suite } : {}) };
}

export function emptyBmcCredentials(file: string): BmcCredentials {
  return { file, groups: new Map(), nodes: new Map() };
}

export function parseBmcCredentials(text: string, file: string): BmcCredentials {
  const doc = parseSecretYaml(text, file, 'BMC_CREDENTIALS') ?? {};
  const parsed = fileSchema.safeParse(doc);
  if (!parsed.success) {
    // Never echo values: the file is full of passwords.
    const issue = parsed.error.issues[0]!;
    throw new RackseedError('BMC_CREDENTIALS', `${file}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`, { file, path: issue.path.map(String) });
  }
  const d = parsed.data;
  return {
    file,
    ...(d.default ? { default: toCredential(d.default) } : {}),
    groups: new Map(Object.entries(d.groups ?? {}).map(([k, v]) => [k, toCredential(v)])),
    nodes: new Map(Object.entries(d.nodes ?? {}).map(([k, v]) => [k, toCredential(v)])),
  };
}

/** The node's own entry, else its group's, else the default; undefined when none applies. */
export function credentialFor(creds: BmcCredentials, node: string, group: string): BmcCredential | undefined {
  return creds.nodes.get(node) ?? creds.groups.get(group) ?? creds.default;
}
