import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { RackseedError } from './model/errors.js';
import { strict } from './util/strict-object.js';
import { parseYamlDocument } from './util/yaml-document.js';
import { parseAt } from './util/zod-located.js';

/**
 * rackseed.yaml: validated once at start. Every key has a safe default: HTTP and TFTP on, DHCP off until a
 * provisioning interface is named, data in ./data. Relative paths are relative to the config file.
 */

// 0 asks the OS for any free port (tests, side-by-side servers).
const port = z.number().int().min(0).max(65535);
const ipv4 = z.string().regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/, 'expected an IPv4 address');

const httpSchema = strict({
    enabled: z.boolean().default(true),
    listen: z.string().default('0.0.0.0'),
    port: port.default(8080),
    /** The base URL nodes use to reach this server; defaults to http://<dhcp.server_ip or listen>:<port>. */
    public_url: z.url({ protocol: /^https?$/ }).optional(),
  })
  .prefault({});

const tftpSchema = strict({
    enabled: z.boolean().default(true),
    listen: z.string().default('0.0.0.0'),
    port: port.default(69),
    root: z.string().default('/usr/lib/ipxe'),
  })
  .prefault({});

const dhcpSchema = strict({
    /** off | proxy | full. Left out: proxy when an interface is named, else off. */
    mode: z.enum(['off', 'proxy', 'full']).optional(),
    interface: z.string().min(1).optional(),
    server_ip: ipv4.optional(),
  })
  .prefault({})
  .superRefine((d, ctx) => {
    if (d.mode && d.mode !== 'off' && !d.interface) {
      ctx.addIssue({ code: 'custom', path: ['interface'], message: `required when mode is "${d.mode}" (name the provisioning interface)` });
    }
    if (d.mode && d.mode !== 'off' && !d.server_ip) {
      ctx.addIssue({ code: 'custom', path: ['server_ip'], message: `required when mode is "${d.mode}" (this server's address on the provisioning network)` });
    }
  });

const storeSchema = z
  .discriminatedUnion('kind', [
    strict({ kind: z.literal('sqlite'), path: z.string().optional() }),
  ])
  .default({ kind: 'sqlite' });

/** A path below data_dir/files, as served on /files: no absolute paths, no way out of that directory. */
const filesPath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'expected a relative path below data_dir/files without ".."');

const provisioningSchema = strict({
    kernel: filesPath.default('installer/vmlinuz'),
    initrd: filesPath.default('installer/initrd.img'),
  })
  .prefault({});

const logSchema = strict({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .prefault({});

export const configSchema = strict({
  server: strict({ name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/i, 'expected a name of letters, digits and dashes').default('rackseed') }).prefault({}),
  data_dir: z.string().default('./data'),
  inventory: z.string().default('./inventory.yaml'),
  http: httpSchema,
  tftp: tftpSchema,
  dhcp: dhcpSchema,
  store: storeSchema,
  provisioning: provisioningSchema,
  log: logSchema,
});

export type RawConfig = z.infer<typeof configSchema>;

/** The validated configuration with paths resolved and derived values filled in. */
export interface Config {
  file: string;
  serverName: string;
  dataDir: string;
  inventoryPath: string;
  http: { enabled: boolean; listen: string; port: number; publicUrl: string };
  tftp: { enabled: boolean; listen: string; port: number; root: string };
  dhcp: { mode: 'off' | 'proxy' | 'full'; interface?: string; serverIp?: string };
  store: { kind: 'sqlite'; path: string };
  /** Installer kernel and initrd handed to nodes that provision, relative to data_dir/files. */
  provisioning: { kernel: string; initrd: string };
  log: { level: RawConfig['log']['level'] };
}

/** Pure: validates config text. `file` is used for error messages and to resolve relative paths. */
export function parseConfig(text: string, file: string): Config {
  const { doc, where } = parseYamlDocument(text, file, 'CONFIG_INVALID');
  const raw = parseAt(configSchema, doc.toJS() ?? {}, [], where, 'CONFIG_INVALID');
  const base = path.dirname(path.resolve(file));
  const dataDir = path.resolve(base, raw.data_dir);
  const mode = raw.dhcp.mode ?? (raw.dhcp.interface ? 'proxy' : 'off');
  const advertised = raw.dhcp.server_ip ?? (raw.http.listen === '0.0.0.0' ? '127.0.0.1' : raw.http.listen);
  return {
    file: path.resolve(file),
    serverName: raw.server.name,
    dataDir,
    inventoryPath: path.resolve(base, raw.inventory),
    http: {
      enabled: raw.http.enabled,
      listen: raw.http.listen,
      port: raw.http.port,
      publicUrl: (raw.http.public_url ?? `http://${advertised}:${raw.http.port}`).replace(/\/+$/, ''),
    },
    tftp: { ...raw.tftp, root: path.resolve(base, raw.tftp.root) },
    dhcp: {
      mode,
      ...(raw.dhcp.interface ? { interface: raw.dhcp.interface } : {}),
      ...(raw.dhcp.server_ip ? { serverIp: raw.dhcp.server_ip } : {}),
    },
    store: { kind: 'sqlite', path: path.resolve(dataDir, raw.store.path ?? 'rackseed.db') },
    provisioning: raw.provisioning,
    log: raw.log,
  };
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new RackseedError('CONFIG_NOT_FOUND', `${file}: cannot read the configuration file (${(cause as Error).message})`, { file }, { cause });
  }
  return parseConfig(text, file);
}
