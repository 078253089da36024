import { PLAN_STAGE } from '../../model/lifecycle.js';
import type { ObservedStore } from '../../store/types.js';
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { readAdminToken } from '../../auth/admin-token.js';
import { loadConfig, type Config } from '../../config.js';
import { buildImage } from '../../images/build.js';
import { ImageCatalog } from '../../images/catalog.js';
import { importImage } from '../../images/import.js';
import { progressBars } from '../../images/progress-bars.js';
import type { ProgressFn } from '../../images/progress.js';
import { loadRecipe } from '../../images/recipe.js';
import { imageUsers, removeImage, type InstalledOn } from '../../images/remove.js';
import { loadInventory } from '../../inventory/load.js';
import { createLogger } from '../../log.js';
import { RackseedError } from '../../model/errors.js';
import type { ImageManifest, ImageRecord } from '../../model/image.js';
import type { Inventory } from '../../model/inventory.js';
import { openStore } from '../../store/index.js';
import type { CliContext, GlobalOptions } from '../context.js';
import { keyValues, printJson, table, type Output } from '../output.js';

function size(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} B`;
}

function sourceText(m: ImageManifest): string {
  return m.source.kind === 'import' ? `import ${m.source.from}` : `debootstrap ${m.source.recipe.release}${m.source.recipe.variant ? ` (${m.source.recipe.variant})` : ''}`;
}

/**
 * What the store knows of the images on nodes: on each node's disk, and being installed now (the image a
 * provisioning node's plan named). The store is opened for this and closed again.
 */
async function imagesOnNodes(config: Config): Promise<{ installed: InstalledOn[]; installing: InstalledOn[] }> {
  const store = await openStore(config.store).catch((e: unknown) => {
    throw new RackseedError('STORE_UNAVAILABLE', `cannot tell which nodes run the image (the store did not open: ${(e as Error).message})`);
  });
  try {
    const nodes = await store.listNodes();
    const installed = nodes.flatMap((n) => (n.installedImage ? [{ node: n.id, image: n.installedImage.name }] : []));
    const installing: InstalledOn[] = [];
    for (const n of nodes.filter((s) => s.state === 'provisioning')) {
      const image = await imageBeingInstalled(store, n.id);
      if (image !== undefined) installing.push({ node: n.id, image });
    }
    return { installed, installing };
  } finally {
    await store.close();
  }
}

/**
 * The image a provisioning node's installer named in its plan stage, looked for back to the install's start. The
 * download reports progress every few seconds, so the plan stage can lie thousands of events back: the window grows
 * until it reaches provision_started or the node's first event.
 */
async function imageBeingInstalled(store: ObservedStore, node: string): Promise<string | undefined> {
  for (let last = 500; ; last *= 10) {
    const events = await store.listEvents({ node, last });
    for (const e of [...events].reverse()) {
      if (e.event.type === 'provision_started') return undefined;
      if (e.event.type === 'stage' && e.event.stage === PLAN_STAGE) {
        const image = e.event.detail?.['image'];
        return typeof image === 'string' ? image : undefined;
      }
    }
    if (events.length < last) return undefined;
  }
}

/** The inventory file, or none if it does not exist yet (a fresh server: no group uses any image). */
function inventoryOf(config: Config): Inventory | undefined {
  return existsSync(config.inventoryPath) ? loadInventory(config.inventoryPath) : undefined;
}

function catalogOf(config: Config): ImageCatalog {
  return new ImageCatalog(config.dataDir, createLogger('silent'));
}

function view(r: ImageRecord, inventory: Inventory | undefined) {
  return { ...r.manifest, dir: r.dir, urlPath: r.urlPath, usedBy: imageUsers(inventory, r.manifest.name).groups };
}

function getImage(catalog: ImageCatalog, name: string): ImageRecord {
  const r = catalog.get(name);
  if (!r) throw new RackseedError('IMAGE_NOT_FOUND', `no image "${name}" (see \`rackseed image list\`)`, { name });
  return r;
}

/** True if anything in the error's cause chain (or an AggregateError's members) is a refused connection. */
function connectionRefused(e: unknown, depth = 0): boolean {
  if (!e || typeof e !== 'object' || depth > 5) return false;
  const x = e as { code?: unknown; cause?: unknown; errors?: unknown };
  if (x.code === 'ECONNREFUSED') return true;
  if (Array.isArray(x.errors) && x.errors.some((m) => connectionRefused(m, depth + 1))) return true;
  return connectionRefused(x.cause, depth + 1);
}

/**
 * Tells a running server that the image directory changed. No server is fine (it scans at start), and so is a data
 * directory no server ever ran on (no token); any other failure is reported, but the image on disk stays as built.
 */
async function notifyServer(opts: GlobalOptions, config: Config, ctx: (opts: GlobalOptions) => CliContext): Promise<void> {
  if (!opts.token && !process.env.RACKSEED_TOKEN && !readAdminToken(config.dataDir)) return;
  try {
    await ctx(opts).client.post('/images/rescan', {});
  } catch (e) {
    if (connectionRefused(e)) return;
    process.stderr.write(`rackseed: warning: the server was not told to rescan its images: ${(e as Error).message.split('\n')[0]}\n`);
  }
}

function printManifest(out: Output, m: ImageManifest, verb: string): void {
  if (out.json) return printJson(out, m);
  const kernel = m.artefacts.kernel ? `, kernel ${size(m.artefacts.kernel.size)}` : ', no kernel';
  out.write(`${verb} image ${m.name}: rootfs ${size(m.artefacts.rootfs.size)}${kernel}, info-hash ${m.torrent.infoHash}\n`);
}

/** What the sweep of killed runs' scratch trees did; on stderr, so `--json` output stays one document. */
function notice(message: string): void {
  process.stderr.write(`rackseed: ${message}\n`);
}

/** Bars go to stderr, so `--json` output on stdout stays clean. */
async function withBars<T>(body: (onProgress: ProgressFn) => Promise<T>): Promise<T> {
  const bars = progressBars();
  try {
    return await body(bars.onProgress);
  } finally {
    bars.stop();
  }
}

export function registerImage(program: Command, ctx: (opts: GlobalOptions) => CliContext, write: (s: string) => void): void {
  const image = program.command('image').description('build, import and catalogue OS images (build/import run on the server host, as root)');
  const setup = (cmd: Command) => {
    const opts = cmd.optsWithGlobals<GlobalOptions>();
    return { opts, config: loadConfig(opts.config), out: { json: opts.json === true, write } satisfies Output };
  };

  image
    .command('build <name>')
    .description('build an image with debootstrap from a recipe (YAML)')
    .requiredOption('--recipe <file>', 'the recipe, e.g. images/debian12.yaml')
    .option('--force', 'replace an existing image of that name')
    .action(async (name: string, o: { recipe: string; force?: boolean }, cmd: Command) => {
      const { opts, config, out } = setup(cmd);
      const recipe = loadRecipe(o.recipe);
      const m = await withBars((onProgress) => buildImage({ name, recipe, dataDir: config.dataDir, publicUrl: config.http.publicUrl, force: o.force === true, onProgress, onNotice: notice }));
      printManifest(out, m, 'built');
      await notifyServer(opts, config, ctx);
    });

  image
    .command('import <name> <path>')
    .description('make an image of a root file system: a directory, or a .tar, .tar.gz or .tar.zst')
    .option('--force', 'replace an existing image of that name')
    .action(async (name: string, from: string, o: { force?: boolean }, cmd: Command) => {
      const { opts, config, out } = setup(cmd);
      const m = await withBars((onProgress) => importImage({ name, from, dataDir: config.dataDir, publicUrl: config.http.publicUrl, force: o.force === true, onProgress, onNotice: notice }));
      printManifest(out, m, 'imported');
      await notifyServer(opts, config, ctx);
    });

  image
    .command('list')
    .description('images in the data directory')
    .action((_o, cmd: Command) => {
      const { config, out } = setup(cmd);
      const inventory = inventoryOf(config);
      const images = catalogOf(config).list();
      if (out.json) return printJson(out, images.map((r) => view(r, inventory)));
      out.write(
        `${table(
          ['NAME', 'SOURCE', 'ROOTFS', 'KERNEL', 'CREATED', 'USED BY'],
          images.map((r) => {
            const m = r.manifest;
            return [m.name, sourceText(m), size(m.artefacts.rootfs.size), m.artefacts.kernel ? 'yes' : 'no', m.createdAt, imageUsers(inventory, m.name).groups.join(',') || undefined];
          }),
        )}\n`,
      );
    });

  image
    .command('show <name>')
    .description('one image: source, artefacts with sha256, torrent')
    .action((name: string, _o, cmd: Command) => {
      const { config, out } = setup(cmd);
      const inventory = inventoryOf(config);
      const r = getImage(catalogOf(config), name);
      if (out.json) return printJson(out, view(r, inventory));
      const m = r.manifest;
      const art = (a: ImageManifest['artefacts']['kernel']) => (a ? `${a.file}  ${size(a.size)}  sha256 ${a.sha256}` : undefined);
      out.write(
        `${keyValues([
          ['name', m.name],
          ['created', m.createdAt],
          ['source', sourceText(m)],
          ['packages', m.source.kind === 'debootstrap' ? m.source.recipe.packages.join(', ') || undefined : undefined],
          ['rootfs', art(m.artefacts.rootfs)],
          ['kernel', art(m.artefacts.kernel)],
          ['initrd', art(m.artefacts.initrd)],
          ['torrent', `${m.torrent.file}  info-hash ${m.torrent.infoHash}  pieces of ${m.torrent.pieceLength / 1024} KiB`],
          ['directory', r.dir],
          ['url', `${config.http.publicUrl}${r.urlPath}/`],
          ['used by', imageUsers(inventory, m.name).groups.join(', ') || undefined],
        ])}\n`,
      );
    });

  image
    .command('remove <name>')
    .description('delete an image no group uses (without --yes, only show what would be deleted)')
    .option('--yes', 'really delete it')
    .action(async (name: string, o: { yes?: boolean }, cmd: Command) => {
      const { opts, config, out } = setup(cmd);
      const r = getImage(catalogOf(config), name);
      const plan = await removeImage({ dataDir: config.dataDir, image: r, inventory: inventoryOf(config), ...(await imagesOnNodes(config)), yes: o.yes === true, onNotice: notice });
      if (out.json) printJson(out, plan);
      else if (!plan.removed) {
        out.write(`would delete ${plan.dir} (${size(plan.bytes)}):\n${plan.files.map((f) => `  ${f.file}  ${size(f.size)}`).join('\n')}\nrun again with --yes to delete it\n`);
      } else out.write(`removed image ${name} (${size(plan.bytes)} freed)\n`);
      if (plan.removed) await notifyServer(opts, config, ctx);
    });
}
