import nunjucks from 'nunjucks';
import { RackseedError, isRackseedError } from '../../model/errors.js';
import { ipxeArg, ipxeText, ipxeUrl } from './escape.js';
import { guardNunjucks } from '../../util/nunjucks-guard.js';

// No template reaches a constructor or a prototype (and through them, JavaScript in this process).
guardNunjucks();

/** `next-device` is a partial: how every script that sends a machine on to its next boot device ends. */
export type IpxeTemplateName = 'entry' | 'unknown' | 'provision' | 'wipe' | 'local' | 'kernel' | 'unavailable' | 'next-device';

export const IPXE_TEMPLATE_NAMES: readonly IpxeTemplateName[] = ['entry', 'unknown', 'provision', 'wipe', 'local', 'kernel', 'unavailable', 'next-device'];

export interface IpxeRenderer {
  render(name: IpxeTemplateName, context: Record<string, unknown>): string;
}

/**
 * Renders iPXE scripts from template sources handed in (main reads them from ipxe/), so rendering is pure.
 * A missing value is an error, never an empty string: an empty kernel URL would boot nothing, silently.
 */
export function createIpxeRenderer(sources: Readonly<Record<IpxeTemplateName, string>>): IpxeRenderer {
  const loader = {
    getSource(name: string) {
      const key = name.replace(/\.ipxe\.njk$/, '') as IpxeTemplateName;
      const src = sources[key];
      if (src === undefined) throw new RackseedError('TEMPLATE_ERROR', `no iPXE template named "${name}"`);
      return { src, path: `ipxe/${key}.ipxe.njk`, noCache: false };
    },
  };
  const env = new nunjucks.Environment(loader as unknown as nunjucks.ILoader, { autoescape: false, throwOnUndefined: true, trimBlocks: false });
  env.addFilter('ipxe_text', ipxeText);
  env.addFilter('ipxe_arg', ipxeArg);
  env.addFilter('ipxe_url_base', ipxeUrl);
  return {
    render(name, context) {
      try {
        return env.render(`${name}.ipxe.njk`, context);
      } catch (e) {
        // nunjucks wraps errors thrown inside filters; surface ours with their code.
        const inner = findRackseedError(e);
        if (inner) throw inner;
        const message = (e as Error).message.replace(/\s+/g, ' ').trim();
        const missing = /undefined|null/.test(message);
        throw new RackseedError(missing ? 'TEMPLATE_MISSING_VALUE' : 'TEMPLATE_ERROR', `ipxe/${name}.ipxe.njk: ${message}`, { template: name }, { cause: e });
      }
    },
  };
}

function findRackseedError(e: unknown): RackseedError | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    if (isRackseedError(cur)) return cur;
  }
  return undefined;
}
