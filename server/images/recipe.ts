import { readFileSync } from 'node:fs';
import { RackseedError } from '../model/errors.js';
import type { ImageRecipe } from '../model/image.js';
import { parseYamlDocument, yamlToJs } from '../util/yaml-document.js';
import { parseAt } from '../util/zod-located.js';
import { recipeSchema } from './manifest.js';

/** Pure: validates recipe text; an error names the file, the line and the key (`images/x.yaml:7 packages[2]: ...`). */
export function parseRecipe(text: string, file: string): ImageRecipe {
  const { doc, where } = parseYamlDocument(text, file, 'IMAGE_RECIPE_INVALID');
  const recipe = parseAt(recipeSchema, yamlToJs(doc, file, 'IMAGE_RECIPE_INVALID') ?? {}, [], where, 'IMAGE_RECIPE_INVALID') as ImageRecipe;
  if (recipe.variant === undefined) delete recipe.variant;
  if (recipe.hook === undefined) delete recipe.hook;
  return recipe;
}

export function loadRecipe(file: string): ImageRecipe {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new RackseedError('IMAGE_RECIPE_INVALID', `${file}: cannot read the recipe (${(cause as Error).message})`, { file }, { cause });
  }
  return parseRecipe(text, file);
}

/** What debootstrap alone produces from a recipe: trees with equal keys are interchangeable (test caches use it). */
export function bootstrapInputs(recipe: ImageRecipe): { release: string; variant: string | null; packages: string[] } {
  return { release: recipe.release, variant: recipe.variant ?? null, packages: [...new Set(recipe.packages)].sort() };
}

/** A recipe that names a kernel promises a bootable image: its build fails if no kernel comes out of it. */
export function recipeWantsKernel(recipe: ImageRecipe): boolean {
  return recipe.packages.some((p) => p.startsWith('linux-image-'));
}
