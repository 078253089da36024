/**
 * An image build the parent SIGKILLs half way: the recipe from argv, its hook replaced by one that sleeps, so the
 * build is caught with its scratch tree made and the host's /proc, /sys and /dev mounted in it, as a real build
 * killed during its hook would leave them. Prints "hook running" once the hook has started.
 */
import { buildImage } from '../../server/images/build.js';
import { loadRecipe } from '../../server/images/recipe.js';
import { copyCachedBootstrap } from './debian-image.js';

const [dataDir, recipeFile] = process.argv.slice(2);
if (!dataDir || !recipeFile) {
  process.stderr.write('usage: build-child.ts DATADIR RECIPE\n');
  process.exit(2);
}
// The sleep is bounded, so an orphan whose parent failed to kill it still goes away.
const recipe = { ...loadRecipe(recipeFile), hook: 'echo hook running\nsleep 300\n' };
await buildImage({
  name: 'killed',
  recipe,
  dataDir,
  publicUrl: 'http://10.9.8.7:8080',
  bootstrap: copyCachedBootstrap,
  onProgress: (p) => {
    if (p.stage === 'hook' && p.done === 0) process.stdout.write('hook starting\n');
  },
});
process.stdout.write('build finished (the parent should have killed it)\n');
