import { RackseedError } from '../../model/errors.js';
import { parseSls } from '../parse/sls.js';
import { createSlsRenderer } from '../render/render.js';
import type { SlsSource } from '../source.js';
import { parseTop, slsForNode } from '../top.js';
import type { CompiledPlan, RenderContext, SlsDocument, SourceRef, StateDecl } from '../types.js';
import { applyExtendExclude } from './extend-exclude.js';
import { gatherSls } from './gather.js';
import { orderStates } from './order.js';
import { applyRequisiteIn } from './requisite-in.js';
import { resolveRequisites } from './resolve.js';
import { verifyStates } from './verify.js';

export interface CompileInput {
  source: SlsSource;
  /** This node's context; its pillar must hold only this node's data (pillar.ts composes it). */
  context: RenderContext;
  /** Compile these SLS instead of what top.sls assigns the node (Salt's state.apply foo). */
  sls?: readonly string[];
  /** 'pkg.installed', ... (the module registry's keys); unknown functions are then STATE_MODULE_UNKNOWN. */
  knownFunctions?: Iterable<string>;
  /** Argument checks per state (StateFunction.validate). */
  validateArgs?: (decl: StateDecl) => string[];
}

/** render -> parse -> gather includes -> extend/exclude -> verify -> requisite-in -> resolve -> order. */
export function compileForNode(input: CompileInput): CompiledPlan {
  const renderer = createSlsRenderer(input.source, input.context);
  const roots = input.sls ? input.sls.map((sls) => ({ sls, source: { file: '(requested)' } as SourceRef })) : topSlsForNode(input.source, input.context, renderer);
  const load = (sls: string): SlsDocument | undefined => {
    const text = input.source.read(sls);
    if (!text) return undefined;
    return parseSls({ sls, file: text.file, path: text.path, rendered: renderer.renderSls(text, sls), template: text.text });
  };
  const docs = gatherSls(roots, load);
  const flattened = applyExtendExclude(docs);
  const known = input.knownFunctions ? new Set(input.knownFunctions) : undefined;
  const verified = verifyStates(flattened, { ...(known ? { knownFunctions: known } : {}), ...(input.validateArgs ? { validateArgs: input.validateArgs } : {}) });
  const forward = applyRequisiteIn(verified);
  return { states: orderStates(resolveRequisites(forward)) };
}

/** The SLS top.sls assigns this node, in order, each once. */
export function topSlsForNode(source: SlsSource, context: RenderContext, renderer = createSlsRenderer(source, context)): Array<{ sls: string; source: SourceRef }> {
  const top = source.read('top');
  if (!top) throw new RackseedError('SLS_NOT_FOUND', 'the state tree has no top.sls', { sls: 'top' });
  const parsed = parseTop(renderer.renderSls(top, 'top'), top.file, top.text);
  return slsForNode(parsed, { name: context.node.name, group: context.node.group, roles: context.node.roles, labels: context.node.labels, facts: context.facts, pillar: context.pillar });
}
