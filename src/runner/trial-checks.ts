/**
 * Checks across fields of each expanded trial (a sweep can change the backbone, so they
 * are made per trial): layers within the backbone's depth, heads dividing its width, image
 * size a multiple of its patch, Pre-VCP's width condition, then the method's own resolver.
 * An issue is placed where the offending value was written, or, for a default, where the
 * backbone that makes it invalid was written.
 */
import type { BackboneShape } from '../model/clip/presets.js';
import { resolveBackbone, type BackboneInfo } from '../model/backbones.js';
import { sortKeys } from './canonical.js';
import { originOf } from './expand.js';
import type { IssueSink } from './issues.js';
import { METHOD_SPECS } from './methods.js';
import { show, type JsonPath } from './spec-error.js';
import type { Trial } from './spec-types.js';

type Draft = Omit<Trial, 'id' | 'trainingKey' | 'featureKey'>;

/** Resolves backbones once per (name, file); returns each trial's backbone (undefined if invalid). */
export function checkTrials(
  drafts: Draft[],
  sink: IssueSink,
  rootFile: string,
): (BackboneInfo | undefined)[] {
  const cache = new Map<string, BackboneInfo | { error: string }>();
  return drafts.map((trial) => {
    const model = trial.config.model;
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

function checkShapes(trial: Draft, info: BackboneInfo, sink: IssueSink): void {
  const model = trial.config.model;
  const shape: BackboneShape = info.shape;
  const name = info.kind === 'known' ? info.name : `the checkpoint at ${info.dir}`;
  const blame = (field: string): { path: JsonPath; note: string } => {
    // The field's own origin (or an ancestor inside it, e.g. `templates` for `templates.0`), never the whole `base`.
    const top = `model.${field.split('.')[0]}`;
    const own = Object.keys(trial.origins).some((k) => k === top)
      ? originOf(trial.origins, `model.${field}`)
      : undefined;
    if (own) return { path: own, note: '' };
    return {
      path: originOf(trial.origins, 'model.backbone') ?? ['base'],
      note: ` (${field} is the default; set base.${field})`,
    };
  };
  let ok = true;
  const fail = (field: string, message: string): void => {
    const { path, note } = blame(field);
    sink.error(path, 'value', `${message}${note}`);
    ok = false;
  };

  const layers = model.layers as number[];
  const beyond = layers.filter((l) => l > shape.visionLayers);
  if (beyond.length > 0) {
    fail(
      'layers',
      `got layers ${show(layers)}, expected 1-based vision blocks in 1..${shape.visionLayers}: ${name} has ${shape.visionLayers} vision blocks (${beyond.join(', ')} beyond it)`,
    );
  }
  const heads = model.heads as number;
  if (shape.visionWidth % heads !== 0) {
    const divisors = Array.from({ length: shape.visionWidth }, (_, i) => i + 1).filter(
      (d) => shape.visionWidth % d === 0 && d <= 64,
    );
    fail(
      'heads',
      `got heads ${heads}, expected a divisor of the vision width ${shape.visionWidth} of ${name} (e.g. ${divisors.join(', ')})`,
    );
  }
  const size = model.image_size as number;
  if (size % shape.patchSize !== 0) {
    const lo = size - (size % shape.patchSize);
    const nearby = [lo, lo + shape.patchSize].filter((s) => s > 0).join(' or ');
    fail(
      'image_size',
      `got image_size ${size}, expected a multiple of the patch size ${shape.patchSize} of ${name} (e.g. ${nearby})`,
    );
  }
  if (model.pre_vcp === true && shape.textWidth !== shape.embedDim) {
    fail(
      'pre_vcp',
      `got pre_vcp true, expected false for ${name}: Pre-VCP needs text width (${shape.textWidth}) = embed dim (${shape.embedDim})`,
    );
  }
  if (!ok) return;
  try {
    const resolved = METHOD_SPECS[trial.config.method].resolve(model, shape);
    // The executor gets an absolute checkpoint path; ids use the weights identity instead.
    trial.config.model = sortKeys(
      info.kind === 'checkpoint' ? { ...resolved, backbone: info.dir } : resolved,
    );
  } catch (error) {
    const e = error as { field?: string; got?: unknown; expected?: string; message: string };
    if (typeof e.field !== 'string') throw error;
    const field = e.field.replace(/\[(\d+)\]/g, '.$1');
    const { path, note } = blame(field);
    sink.error(path, 'value', `got ${show(e.got)}, expected ${e.expected}${note}`);
  }
}
