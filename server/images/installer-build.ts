import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { RackseedError } from '../model/errors.js';
import { parseYamlDocument, yamlToJs } from '../util/yaml-document.js';
import { parseAt } from '../util/zod-located.js';
import { z } from 'zod';
import { PACKAGE_ROOT } from '../paths.js';

const run = promisify(execFile);
const BIG = { maxBuffer: 64 << 20 };

/**
 * `rackseed installer build`: the installer's kernel and initramfs, from Debian packages (images/installer/recipe.yaml).
 * The output (<data_dir>/files/installer/{vmlinuz,initrd.img}) is what the provision boot script points at.
 *
 * Idempotent: build.json next to the output records a hash of everything that goes in (recipe, scripts, the kernel
 * package version the archive offers, the versions of the host packages the tools come from); when it matches, the
 * build is skipped. The two files are renamed into place only when both are complete.
 */

export const INSTALLER_DIR = path.join(PACKAGE_ROOT, 'images', 'installer');

const entry = z.strictObject({ package: z.string().regex(/^[a-z0-9][a-z0-9+.-]*$/), path: z.string().regex(/^\/[A-Za-z0-9._/+-]+$/) });
const recipeSchema = z.strictObject({
  kernel: z.strictObject({ package: z.string().regex(/^[a-z0-9][a-z0-9+.-]*$/), modules: z.array(z.string().regex(/^[a-z0-9_-]+$/)).min(1) }),
  busybox: entry,
  binaries: z.array(entry),
  files: z.array(entry).default([]),
  scripts: z.array(z.strictObject({ from: z.string().regex(/^[A-Za-z0-9._/-]+$/), to: z.string().regex(/^\/[A-Za-z0-9._/-]+$/) })),
});
export type InstallerRecipe = z.infer<typeof recipeSchema>;

export interface InstallerBuild {
  kernel: string;
  initrd: string;
  kernelPackage: string;
  kernelVersion: string;
  /** Modules in the order /init loads them (dependencies first). */
  modules: string[];
  initrdBytes: number;
  /** True when nothing had to be built. */
  cached: boolean;
  seconds: number;
}

export interface InstallerBuildOptions {
  /** Where vmlinuz and initrd.img go; normally <data_dir>/files/installer. */
  outDir: string;
  /** The recipe directory; images/installer of this package by default. */
  recipeDir?: string;
  /** Rebuild even when build.json says the output is current. */
  force?: boolean;
  progress?: (line: string) => void;
}

/** The installer recipe of `dir`; an error names the file, the line and the key, as for image recipes. */
export function loadInstallerRecipe(dir: string): InstallerRecipe {
  const file = path.join(dir, 'recipe.yaml');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new RackseedError('IMAGE_RECIPE_INVALID', `${file}: cannot read the installer recipe (${(cause as Error).message})`, { file }, { cause });
  }
  const { doc, where } = parseYamlDocument(text, file, 'IMAGE_RECIPE_INVALID');
  return parseAt(recipeSchema, yamlToJs(doc, file, 'IMAGE_RECIPE_INVALID') ?? {}, [], where, 'IMAGE_RECIPE_INVALID') as InstallerRecipe;
}

async function hostPackageVersions(packages: string[]): Promise<Record<string, string>> {
  const unique = [...new Set(packages)].sort();
  const versions: Record<string, string> = {};
  const missing: string[] = [];
  for (const p of unique) {
    try {
      const { stdout } = await run('dpkg-query', ['-W', '-f=${db:Status-Status} ${Version}', p]);
      const [status, version] = stdout.trim().split(' ');
      if (status === 'installed' && version) versions[p] = version;
      else missing.push(p);
    } catch {
      missing.push(p);
    }
  }
  if (missing.length > 0) throw new Error(`the installer is built from host packages that are missing: apt-get install -y --no-install-recommends ${missing.join(' ')}`);
  return versions;
}

/** linux-image-amd64 -> linux-image-6.1.0-56-amd64 and the version the archive offers. */
async function resolveKernelPackage(meta: string): Promise<{ name: string; version: string }> {
  const { stdout } = await run('apt-cache', ['depends', '--no-recommends', '--no-suggests', meta], BIG);
  const name = /Depends:\s*(linux-image-[^\s<>]+)/.exec(stdout)?.[1] ?? meta;
  const show = await run('apt-cache', ['show', '--no-all-versions', name], BIG);
  const version = /^Version:\s*(\S+)/m.exec(show.stdout)?.[1];
  if (!version) throw new Error(`apt-cache knows no version of ${name} (run apt-get update?)`);
  return { name, version };
}

/** modules.dep (made by busybox depmod) -> the wanted modules and their dependencies, dependencies first. */
export function moduleLoadOrder(modulesDep: string, wanted: readonly string[]): string[] {
  const byName = new Map<string, { file: string; deps: string[] }>();
  const norm = (file: string): string => path.basename(file).replace(/\.ko(\.[a-z]+)?$/, '').replaceAll('-', '_');
  for (const line of modulesDep.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const file = line.slice(0, colon).trim();
    byName.set(norm(file), { file, deps: line.slice(colon + 1).trim().split(/\s+/).filter(Boolean) });
  }
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (file: string, chain: string[]): void => {
    if (seen.has(file)) return;
    if (chain.includes(file)) throw new Error(`module dependency cycle: ${[...chain, file].join(' -> ')}`);
    const mod = byName.get(norm(file));
    if (!mod) throw new Error(`module ${file} (needed by ${chain.join(' -> ') || 'the recipe'}) is not in the kernel package`);
    for (const dep of mod.deps) visit(dep, [...chain, file]);
    seen.add(file);
    order.push(mod.file);
  };
  for (const w of wanted) {
    const mod = byName.get(w.replaceAll('-', '_'));
    if (!mod) throw new Error(`module ${w} is not in the kernel package (built in, or misspelt?)`);
    visit(mod.file, []);
  }
  return order;
}

/** The shared libraries (and the dynamic loader) a binary needs, as ldd names them. */
async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await run('ldd', [binary]).catch(() => ({ stdout: '' }));
  const libs: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

function inputsHash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

export async function buildInstaller(opts: InstallerBuildOptions): Promise<InstallerBuild> {
  const started = Date.now();
  const say = opts.progress ?? (() => {});
  const recipeDir = opts.recipeDir ?? INSTALLER_DIR;
  const recipe = loadInstallerRecipe(recipeDir);
  const scripts = recipe.scripts.map((s) => ({ ...s, text: readFileSync(path.join(recipeDir, s.from), 'utf8') }));
  const hostPackages = await hostPackageVersions(['busybox-static', 'cpio', recipe.busybox.package, ...recipe.binaries.map((b) => b.package), ...recipe.files.map((f) => f.package)]);
  const kernelPkg = await resolveKernelPackage(recipe.kernel.package);
  const key = inputsHash({ format: 1, recipe, scripts, hostPackages, kernelPkg });

  const kernelOut = path.join(opts.outDir, 'vmlinuz');
  const initrdOut = path.join(opts.outDir, 'initrd.img');
  const stampFile = path.join(opts.outDir, 'build.json');
  if (!opts.force && existsSync(stampFile) && existsSync(kernelOut) && existsSync(initrdOut)) {
    const stamp = JSON.parse(readFileSync(stampFile, 'utf8')) as Omit<InstallerBuild, 'cached' | 'seconds'> & { key: string };
    if (stamp.key === key) {
      say(`installer is current (${stamp.kernelPackage} ${stamp.kernelVersion})`);
      return { ...stamp, kernel: kernelOut, initrd: initrdOut, cached: true, seconds: (Date.now() - started) / 1000 };
    }
  }

  const work = mkdtempSync(path.join(tmpdir(), 'rackseed-installer-'));
  try {
    say(`apt-get download ${kernelPkg.name} (${kernelPkg.version})`);
    const debDir = path.join(work, 'deb');
    mkdirSync(debDir);
    // As root apt would drop to _apt, which cannot write into a private temp dir.
    await run('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', `${kernelPkg.name}=${kernelPkg.version}`], { cwd: debDir, ...BIG });
    const deb = readdirSync(debDir).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${kernelPkg.name} left no .deb`);
    const kernelTree = path.join(work, 'kernel');
    await run('dpkg-deb', ['-x', path.join(debDir, deb), kernelTree]);
    const kernelVersion = readdirSync(path.join(kernelTree, 'lib', 'modules'))[0];
    if (!kernelVersion) throw new Error(`${deb} holds no modules`);
    await run(recipe.busybox.path, ['depmod', '-b', kernelTree, kernelVersion]);
    const modDir = path.join('lib', 'modules', kernelVersion);
    const modules = moduleLoadOrder(readFileSync(path.join(kernelTree, modDir, 'modules.dep'), 'utf8'), recipe.kernel.modules);

    say(`initramfs: busybox, ${recipe.binaries.length} tools, ${modules.length} modules`);
    const root = path.join(work, 'root');
    const put = (dest: string, from: string, mode?: number): void => {
      const to = path.join(root, dest);
      mkdirSync(path.dirname(to), { recursive: true });
      copyFileSync(realpathSync(from), to);
      if (mode !== undefined) chmodSync(to, mode);
    };
    for (const d of ['proc', 'sys', 'dev', 'run', 'tmp', 'target', 'etc', 'root', 'bin', 'sbin', 'usr/bin', 'usr/sbin']) mkdirSync(path.join(root, d), { recursive: true });

    const shipped = new Set(recipe.binaries.map((b) => path.basename(b.path)));
    put(recipe.busybox.path, recipe.busybox.path, 0o755);
    const { stdout: applets } = await run(recipe.busybox.path, ['--list-full']);
    for (const applet of applets.split('\n').map((l) => l.trim())) {
      if (!applet || applet.includes('..') || shipped.has(path.basename(applet)) || `/${applet}` === recipe.busybox.path) continue;
      const link = path.join(root, applet);
      mkdirSync(path.dirname(link), { recursive: true });
      if (!existsSync(link)) symlinkSync(recipe.busybox.path, link);
    }
    const libs = new Set<string>();
    for (const b of recipe.binaries) {
      put(b.path, b.path, 0o755);
      for (const lib of await sharedLibraries(b.path)) libs.add(lib);
    }
    for (const lib of libs) put(lib, lib, 0o755);
    for (const f of recipe.files) put(f.path, f.path, 0o644);
    for (const m of modules) put(path.join(modDir, m), path.join(kernelTree, modDir, m), 0o644);
    writeFileSync(path.join(root, 'etc', 'rackseed-modules'), modules.map((m) => `/${modDir}/${m}\n`).join(''));
    for (const s of scripts) {
      const to = path.join(root, s.to);
      mkdirSync(path.dirname(to), { recursive: true });
      writeFileSync(to, s.text, { mode: 0o755 });
    }

    // Same inputs, same bytes: mtime 0, owner root, names sorted.
    await run('find', [root, '-exec', 'touch', '-h', '-d', '@0', '{}', '+']);
    const { stdout: list } = await run('find', ['.', '-mindepth', '1'], { cwd: root, ...BIG });
    const names = list.split('\n').filter(Boolean).sort().join('\n');
    const cpio = await new Promise<Buffer>((resolve, reject) => {
      const child = execFile('cpio', ['-o', '-H', 'newc', '--owner=0:0', '--reproducible', '--quiet'], { cwd: root, encoding: 'buffer', maxBuffer: 1 << 30 }, (err, stdout) =>
        err ? reject(err) : resolve(stdout),
      );
      child.stdin?.end(`${names}\n`);
    });

    mkdirSync(opts.outDir, { recursive: true });
    const initrdBytes = gzipSync(cpio, { level: 9 });
    writeFileSync(`${initrdOut}.tmp`, initrdBytes);
    copyFileSync(path.join(kernelTree, 'boot', `vmlinuz-${kernelVersion}`), `${kernelOut}.tmp`);
    renameSync(`${kernelOut}.tmp`, kernelOut);
    renameSync(`${initrdOut}.tmp`, initrdOut);
    const result = { kernel: kernelOut, initrd: initrdOut, kernelPackage: `${kernelPkg.name}=${kernelPkg.version}`, kernelVersion, modules, initrdBytes: statSync(initrdOut).size };
    writeFileSync(stampFile, `${JSON.stringify({ ...result, key, hostPackages }, null, 2)}\n`);
    const seconds = (Date.now() - started) / 1000;
    say(`installer built in ${seconds.toFixed(1)} s: ${kernelOut} (${kernelVersion}), ${initrdOut} (${(result.initrdBytes / 1048576).toFixed(1)} MiB)`);
    return { ...result, cached: false, seconds };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
