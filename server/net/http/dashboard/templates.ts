import path from 'node:path';
import nunjucks from 'nunjucks';
import { PACKAGE_ROOT } from '../../../paths.js';
import { formatBytes } from './view-model.js';
import { guardNunjucks } from '../../../util/nunjucks-guard.js';

// No template reaches a constructor or a prototype (and through them, JavaScript in this process).
guardNunjucks();

/** The dashboard's files at the package root, next to ipxe/: templates and the static script and stylesheet. */
export const UI_DIR = path.join(PACKAGE_ROOT, 'ui');
export const UI_TEMPLATE_DIR = path.join(UI_DIR, 'templates');
export const UI_STATIC_DIR = path.join(UI_DIR, 'static');

/** "2024-05-01 12:00:03Z": short, unambiguous, and the same on every server whatever its time zone. */
export function formatTime(value: number | string | undefined): string {
  if (value === undefined || value === '') return '';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? '' : `${d.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/**
 * HTML templates. This is a separate environment from the iPXE renderer on purpose: HTML needs autoescape on,
 * so every value a node, an operator or a state run wrote is escaped where it lands.
 */
export function createPageRenderer(templateDir: string = UI_TEMPLATE_DIR): (name: string, context: Record<string, unknown>) => string {
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(templateDir, { noCache: false }), { autoescape: true, throwOnUndefined: false });
  env.addFilter('bytes', (n: unknown) => (typeof n === 'number' ? formatBytes(n) : ''));
  env.addFilter('time', (v: unknown) => (typeof v === 'number' || typeof v === 'string' ? formatTime(v) : ''));
  env.addFilter('json', (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v)));
  return (name, context) => env.render(`${name}.njk`, context);
}
