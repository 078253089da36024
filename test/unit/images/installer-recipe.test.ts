import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadInstallerRecipe } from '../../../server/images/installer-build.js';

const SHIPPED = path.resolve(import.meta.dirname, '../../../images/installer');
let copy: string | undefined;
afterEach(() => {
  if (copy) rmSync(copy, { recursive: true, force: true });
  copy = undefined;
});

describe('the installer recipe', () => {
  it('loads Ethernet and storage drivers for servers, not only for virtual machines', () => {
    const { modules } = loadInstallerRecipe(SHIPPED).kernel;
    for (const m of ['e1000', 'virtio_net', 'igb', 'ixgbe', 'i40e', 'ice', 'mlx5_core', 'bnxt_en', 'tg3', 'nvme', 'ahci', 'megaraid_sas', 'mpt3sas', 'smartpqi', 'hpsa']) expect(modules).toContain(m);
  });

  it("a site's copy with a mistake is refused with the file, the line and the key", () => {
    copy = mkdtempSync(path.join(tmpdir(), 'rackseed-installer-recipe-'));
    cpSync(SHIPPED, copy, { recursive: true });
    const file = path.join(copy, 'recipe.yaml');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.replace('  package: linux-image-amd64\n', '  package: linux-image-amd64\n  flavour: rt\n'));
    const line = text.split('\n').indexOf('  package: linux-image-amd64') + 2;
    expect(() => loadInstallerRecipe(copy!)).toThrow(expect.objectContaining({ code: 'IMAGE_RECIPE_INVALID', message: expect.stringMatching(new RegExp(`^${file}:${line} kernel\\.flavour: `)) }));
    expect(() => loadInstallerRecipe(path.join(copy!, 'nowhere'))).toThrow(/nowhere\/recipe\.yaml: cannot read the installer recipe/);
  });
});
