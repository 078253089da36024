import { createHash } from 'node:crypto';
import { z } from 'zod';
import { IMAGE_NAME, SHA256_HEX, type ImageManifest, type ImageRecipe, type PublishedRecipe } from '../model/image.js';

const artefact = z.strictObject({ file: z.string().regex(/^[A-Za-z0-9._-]+$/), sha256: z.string().regex(SHA256_HEX), size: z.number().int().nonnegative() });

/** The hook's script in the tree, and the policy that keeps package scripts from starting daemons while it runs. */
export const HOOK_SCRIPT = '/tmp/rackseed-hook.sh';
export const POLICY_RC_D = '/usr/sbin/policy-rc.d';
/** Paths the build itself writes while a hook runs, and removes afterwards: a recipe file there would vanish. */
const BUILD_PATHS = [POLICY_RC_D, HOOK_SCRIPT];

// A file's path: absolute, one name per segment (no "", ".", ".." or trailing "/"), so it names a file, checked now
// rather than after debootstrap has run for minutes.
const recipeFilePath = z
  .string()
  .regex(/^(\/(?!\.{1,2}(\/|$))[^/\0]+)+$/, 'expected an absolute path to a file, without "..", "." or a trailing "/"')
  .refine((p) => !BUILD_PATHS.includes(p), { message: `the build uses ${BUILD_PATHS.join(' and ')} itself while the hook runs; write such a file from the hook` });

const recipe = z.strictObject({
  release: z.string().regex(/^[a-z][a-z0-9-]*$/, 'expected a Debian release name such as bookworm'),
  variant: z.enum(['minbase', 'buildd', 'fakechroot']).optional(),
  packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]*$/, 'expected a Debian package name')).default([]),
  files: z
    .array(z.strictObject({ path: recipeFilePath, content: z.string(), mode: z.string().regex(/^0?[0-7]{3,4}$/).optional() }))
    .default([]),
  hook: z.string().optional(),
});

export const recipeSchema = recipe;

/** In a manifest: the hook by its hash (older manifests still hold the text, and still parse). */
const publishedRecipeSchema = recipe.extend({ hookSha256: z.string().regex(SHA256_HEX).optional() });

export const manifestSchema = z.strictObject({
  version: z.literal(1),
  name: z.string().regex(IMAGE_NAME),
  createdAt: z.string(),
  source: z.discriminatedUnion('kind', [z.strictObject({ kind: z.literal('debootstrap'), recipe: publishedRecipeSchema }), z.strictObject({ kind: z.literal('import'), from: z.string() })]),
  artefacts: z.strictObject({ rootfs: artefact, kernel: artefact.optional(), initrd: artefact.optional() }),
  torrent: z.strictObject({ file: z.string().regex(/^[A-Za-z0-9._-]+$/), infoHash: z.string().regex(/^[0-9a-f]{40}$/), pieceLength: z.number().int().positive() }),
});

/** Pure: validates a manifest's JSON text; the error says what is wrong and where. */
export function parseManifest(text: string, file: string): ImageManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not JSON (${(e as Error).message})`);
  }
  const r = manifestSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new Error(`${file}: ${i.path.join('.') || '(top level)'}: ${i.message}`);
  }
  return r.data as ImageManifest;
}

/** The recipe for the manifest, its hook replaced by the hook's sha256 (see PublishedRecipe). */
export function publishedRecipe(recipe: ImageRecipe): PublishedRecipe {
  const { hook, ...rest } = recipe;
  return hook === undefined ? rest : { ...rest, hookSha256: createHash('sha256').update(hook).digest('hex') };
}

/**
 * Pure: a manifest written before hooks were published by their hash still holds the hook's text, which may carry a
 * build-time secret (a private mirror's password) and is served on the boot network. The same manifest with the
 * text replaced by its sha256, or undefined when there is no text to remove.
 */
export function withoutHookText(manifest: ImageManifest): ImageManifest | undefined {
  const source = manifest.source;
  if (source.kind !== 'debootstrap') return undefined;
  const { hookSha256, ...recipe } = source.recipe as PublishedRecipe & { hook?: string };
  if (recipe.hook === undefined) return undefined;
  return { ...manifest, source: { kind: 'debootstrap', recipe: publishedRecipe(recipe as ImageRecipe) } };
}
