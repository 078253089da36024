import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createIpxeRenderer, IPXE_TEMPLATE_NAMES, type IpxeRenderer, type IpxeTemplateName } from '../../server/protocol/ipxe/render.js';
import { IPXE_TEMPLATE_DIR } from '../../server/paths.js';

/** The project's real templates from ipxe/. */
export function projectIpxeRenderer(): IpxeRenderer {
  const sources = Object.fromEntries(
    IPXE_TEMPLATE_NAMES.map((n) => [n, readFileSync(path.join(IPXE_TEMPLATE_DIR, `${n}.ipxe.njk`), 'utf8')]),
  ) as Record<IpxeTemplateName, string>;
  return createIpxeRenderer(sources);
}
