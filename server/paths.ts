import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root, whether running from source (server/) or compiled (dist/): both sit one level below it. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const IPXE_TEMPLATE_DIR = path.join(PACKAGE_ROOT, 'ipxe');
export const BUILTIN_STATES_DIR = path.join(PACKAGE_ROOT, 'states');
