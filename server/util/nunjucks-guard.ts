import nunjucks from 'nunjucks';

/**
 * Names a template may not look up. nunjucks has no sandbox: `range.constructor` is Function, so a template (or a
 * value rendered as one) could run JavaScript in the server, which holds every node's SSH key and secret. Through
 * these names any object leads to Function or to a prototype; without them, templates see data and the filters and
 * globals the server gives them.
 */
const FORBIDDEN = new Set(['constructor', '__proto__', 'prototype', '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__']);

type Runtime = {
  memberLookup: (obj: unknown, name: unknown) => unknown;
  contextOrFrameLookup: (context: unknown, frame: unknown, name: string) => unknown;
  __rackseedGuarded?: true;
};

/** Whether a template may look `name` up (filters that follow attribute paths ask too: they bypass the runtime). */
export function isForbiddenTemplateName(name: string): boolean {
  return FORBIDDEN.has(name);
}

function refuse(name: unknown): never {
  throw new Error(`templates may not use "${String(name)}"`);
}

/**
 * Makes every nunjucks template in this process unable to reach those names: compiled templates call the runtime's
 * lookups through the shared module object, so patching it once covers every Environment (SLS, iPXE, dashboard).
 */
export function guardNunjucks(): void {
  const runtime = (nunjucks as unknown as { runtime: Runtime }).runtime;
  if (runtime.__rackseedGuarded) return;
  const member = runtime.memberLookup;
  const contextual = runtime.contextOrFrameLookup;
  runtime.memberLookup = (obj, name) => (FORBIDDEN.has(String(name)) ? refuse(name) : member(obj, name));
  runtime.contextOrFrameLookup = (context, frame, name) => (FORBIDDEN.has(name) ? refuse(name) : contextual(context, frame, name));
  runtime.__rackseedGuarded = true;
}

