/**
 * Checks across fields of each expanded trial (a sweep can change the backbone, so they
 * are made per trial): the backbone resolves, then the method's own checks against its shapes
 * (for vcp-clip: layers within its depth, heads dividing its width, image size a multiple of
 * its patch, Pre-VCP's width condition). Every field was already validated against the
 * method's schema where it was written. An issue is placed where the offending value was
 * written, or, for a default, where the backbone that makes it invalid was written.
 */
import { resolveBackbone, type BackboneInfo } from '../model/backbones.js';
import { schemaIssues } from '../model/methods/config.js';
import { methodDefinition } from '../model/methods/index.js';
import { sortKeys } from './canonical.js';
import { originOf } from './expand.js';
import type { IssueSink } from './issues.js';
import type { Trial } from './spec-types.js';

type Draft = Omit<Trial, 'id' | 'trainingKey' | 'featureKey'>;

/** Resolves backbones once per (name, file); returns each trial's backbone (undefined if invalid). */
export function checkTrials(
  drafts: Draft[],
  sink: IssueSink,
  rootFile: string,
): (BackboneInfo | undefined)[] {
  const cache = new Map<string, BackboneInfo | { error: string }>();
  const reported = new Set<string>();
  return drafts.map((trial) => {
    const model = trial.config.model;
    if (!fitsMethodSchema(trial, sink, reported)) return undefined;
    const backboneOrigin = originOf(trial.origins, 'model.backbone');
    const file = backboneOrigin ? sink.position(backboneOrigin, 'value').file : rootFile;
    const key = `${String(model.backbone)}\u0000${file}`;
    if (!cache.has(key)) cache.set(key, resolveBackbone(String(model.backbone), file));
    const info = cache.get(key)!;
    if ('error' in info) {
      sink.error(backboneOrigin ?? ['base'], 'value', info.error);
      return undefined;
    }
    checkShapes(trial, info, sink);
    return info;
  });
}

/**
 * The trial's model config against its method's schema. Fields were validated where written,
 * but for the spec's method; a variant with another method can meet a field (e.g. a grid axis)
 * that its method does not have.
 */
function fitsMethodSchema(trial: Draft, sink: IssueSink, reported: Set<string>): boolean {
  const { method, model } = trial.config;
  const issues = schemaIssues(methodDefinition(method), model);
  for (const issue of issues) {
    const at = originOf(trial.origins, ['model', ...issue.path].join('.')) ?? ['base'];
    const message = `${issue.message} (for method ${method}${trial.variant ? `, variant ${JSON.stringify(trial.variant)}` : ''})`;
    // Once per problem, at its first place (a swept field would repeat it per value).
    if (reported.has(message)) continue;
    reported.add(message);
    sink.error(at, 'value', message);
  }
  return issues.length === 0;
}

/** The method's checks across fields against the trial's backbone, each placed where it was written. */
function checkShapes(trial: Draft, info: BackboneInfo, sink: IssueSink): void {
  const model = trial.config.model;
  const name = info.kind === 'known' ? info.name : `the checkpoint at ${info.dir}`;
  const def = methodDefinition(trial.config.method);
  const issues = def.check(model, { shape: info.shape, name });
  for (const issue of issues) {
    // The field's own origin (or an ancestor inside it, e.g. `templates` for `templates.0`),
    // never the whole `base`; a default is blamed on the backbone that makes it invalid.
    const field = issue.path.join('.');
    const top = `model.${String(issue.path[0])}`;
    const own = Object.keys(trial.origins).some((k) => k === top)
      ? originOf(trial.origins, `model.${field}`)
      : undefined;
    if (own) sink.error(own, 'value', issue.message);
    else
      sink.error(
        originOf(trial.origins, 'model.backbone') ?? ['base'],
        'value',
        `${issue.message} (${field} is the default; set base.${field})`,
      );
  }
  if (issues.length > 0) return;
  // The executor gets an absolute checkpoint path; ids use the weights identity instead.
  trial.config.model = sortKeys(
    info.kind === 'checkpoint' ? { ...model, backbone: info.dir } : model,
  );
}
