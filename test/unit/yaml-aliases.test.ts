import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../server/config.js';
import { parseRecipe } from '../../server/images/recipe.js';
import { parseInventoryDetailed } from '../../server/inventory/parse.js';
import { isRackseedError } from '../../server/model/errors.js';
import { parseSls } from '../../server/state/parse/sls.js';
import { parseTop } from '../../server/state/top.js';

/**
 * An unquoted value that starts with `*` is a YAML alias; without its anchor the YAML library threw a bare
 * ReferenceError with no file or line (a 500 from POST /api/v1/inventory/reload), and so did an alias bomb.
 */
function errorOf(parse: () => unknown): { code: string; message: string } {
  try {
    parse();
  } catch (err) {
    if (isRackseedError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('parsed without an error');
}

let bomb = 's:\n  file.managed:\n    - name: /x\n    - contents: &a0 [x,x,x,x,x,x,x,x,x]\n';
for (let i = 1; i < 8; i++) bomb += `    - k${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(',')}]\n`;

describe('YAML aliases: named file and line, never a bare ReferenceError', () => {
  it.each([
    ['config', () => parseConfig('http:\n  port: 8080\n  public_url: *url\n', '/etc/rackseed.yaml'), 'CONFIG_INVALID', '/etc/rackseed.yaml:3: "*url" refers to an anchor (&url)'],
    [
      'inventory',
      () => parseInventoryDetailed('cluster:\n  name: t\ngroups:\n  g: {}\nnodes:\n  - name: n1\n    mac: "52:54:00:00:00:01"\n    group: g\n    rack: *r1\n', '/x/inventory.yaml'),
      'INVENTORY_INVALID',
      '/x/inventory.yaml:9: "*r1" refers to an anchor (&r1)',
    ],
    ['image recipe', () => parseRecipe('name: x\nrelease: bookworm\npackages: [*pkgs]\n', '/x/images/x.yaml'), 'IMAGE_RECIPE_INVALID', '/x/images/x.yaml:3: "*pkgs" refers'],
    ['top.sls', () => parseTop('base:\n  "*":\n    - *base\n', '/x/states/top.sls'), 'SLS_INVALID', '/x/states/top.sls:3: "*base" refers'],
    ['an SLS', () => parseSls({ sls: 'x', file: '/x/states/x.sls', path: 'x.sls', rendered: 'a:\n  cmd.run:\n    - name: *cmd\n' }), 'SLS_INVALID', '/x/states/x.sls:3: "*cmd" refers'],
    ['an SLS alias bomb', () => parseSls({ sls: 'x', file: '/x/states/x.sls', path: 'x.sls', rendered: bomb }), 'SLS_INVALID', '/x/states/x.sls:5: YAML aliases cannot be expanded'],
  ])('%s', (_what, parse, code, start) => {
    const error = errorOf(parse);
    expect(error.code).toBe(code);
    expect(error.message.startsWith(start)).toBe(true);
  });

  it('an anchor defined before its alias is still fine', () => {
    expect(parseConfig('http:\n  port: &p 8080\ntftp:\n  port: *p\n', '/etc/rackseed.yaml').tftp.port).toBe(8080);
  });
});
