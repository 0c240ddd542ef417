/**
 * Sweep expansion: trials = base ⊕ sweep point ⊕ seed. Variants, grid axes and zip groups
 * combine as a product (zip axes vary together inside their group); seeds are innermost.
 * Each trial gets a content-hash id, a training key and a frozen-feature key.
 */
import { relative, resolve, dirname, sep } from 'node:path';
import { LEGACY_CONFIG_VALUES } from '../model/checkpoint-format.js';
import { evalOnlyFields, methodDefaults } from '../model/methods/config.js';
import { methodDefinition, type MethodName } from '../model/methods/index.js';
import { shortHash, sortKeys } from './canonical.js';
import { isPlainObject } from './extends.js';
import type { JsonPath } from './spec-error.js';
import {
  EVAL_DEFAULTS,
  TRAIN_DEFAULTS,
  type FeatureKey,
  type Trial,
  type TrialConfig,
} from './spec-types.js';
import type { Axis, AxisPoint } from './sweep-input.js';

export interface ExpandInput {
  method: MethodName;
  /** The spec's sections as written (after extends). */
  base: Record<string, unknown>;
  train: Record<string, unknown>;
  eval: Record<string, unknown>;
  axes: Axis[];
  seeds: number[];
  /** Spec path of the seeds (for origins): ['seeds', i] for a list, ['seeds'] for a count. */
  seedOrigin(index: number): JsonPath;
  /** File a spec path was written in (relative paths in it are relative to that file). */
  fileOf(origin: JsonPath): string;
}

/** Trial-config path of an axis path: model fields live under `model`. */
export function configPath(axis: readonly string[]): string[] {
  return axis[0] === 'train' || axis[0] === 'eval' ? [...axis] : ['model', ...axis];
}

/** Every trial of the sweep, without keys (see `assignKeys`). */
export function expandTrials(
  input: ExpandInput,
): Omit<Trial, 'id' | 'trainingKey' | 'featureKey'>[] {
  const points = cartesian(input.axes.map((a) => a.points));
  const trials: Omit<Trial, 'id' | 'trainingKey' | 'featureKey'>[] = [];
  for (const point of points) {
    input.seeds.forEach((seed, s) => {
      const origins: Record<string, JsonPath> = {};
      // A variant naming another method starts from that method's defaults: `base` is the
      // spec method's config.
      const own = point.find((p) => p.method !== undefined);
      const method = own?.method ?? input.method;
      const base = own ? {} : input.base;
      const config: TrialConfig = {
        method,
        model: {
          ...structuredClone(methodDefaults(methodDefinition(method))),
          ...structuredClone(base),
        },
        train: fillTrain(input.train),
        eval: fillEval(input.eval),
      };
      recordOrigins(base, ['model'], own ? own.methodOrigin! : ['base'], origins);
      recordOrigins(input.train, ['train'], ['train'], origins);
      recordOrigins(input.eval, ['eval'], ['eval'], origins);
      for (const patch of point.flatMap((p) => p.patches)) {
        const path = configPath(patch.path);
        setPath(config as unknown as Record<string, unknown>, path, structuredClone(patch.value));
        const prefix = path.join('.');
        for (const k of Object.keys(origins))
          if (k === prefix || k.startsWith(`${prefix}.`)) delete origins[k];
        origins[prefix] = patch.origin;
        if (isPlainObject(patch.value)) recordOrigins(patch.value, path, patch.origin, origins);
      }
      // micro_batch defaults to the batch size as swept, not as written in `train`.
      if (!originOf(origins, 'train.micro_batch')?.includes('micro_batch'))
        config.train.micro_batch = config.train.batch_size;
      config.model.seed = seed;
      origins['model.seed'] = input.seedOrigin(s);
      absolutizeRoots(config, origins, input.fileOf);
      const labels = Object.assign({}, ...point.map((p: AxisPoint) => p.labels)) as Record<
        string,
        unknown
      >;
      const variant = typeof labels.variant === 'string' ? labels.variant : undefined;
      trials.push({
        index: trials.length,
        seed,
        variant,
        point: labels,
        config: sortKeys(config),
        origins,
      });
    });
  }
  return trials;
}

function cartesian<T>(lists: T[][]): T[][] {
  return lists.reduce<T[][]>(
    (acc, list) => acc.flatMap((prefix) => list.map((item) => [...prefix, item])),
    [[]],
  );
}

function fillTrain(train: Record<string, unknown>): TrialConfig['train'] {
  const t = structuredClone(train) as Record<string, unknown>;
  const batch = (t.batch_size as number | undefined) ?? TRAIN_DEFAULTS.batch_size;
  return {
    epochs: TRAIN_DEFAULTS.epochs,
    batch_size: batch,
    micro_batch: batch,
    ...t,
    ...(t.dataset === undefined
      ? {}
      : { dataset: { ...TRAIN_DEFAULTS.dataset, ...(t.dataset as object) } }),
    augment: { ...TRAIN_DEFAULTS.augment, ...(t.augment as object) },
  } as TrialConfig['train'];
}

function fillEval(evalInput: Record<string, unknown>): TrialConfig['eval'] {
  const e = structuredClone(evalInput) as Record<string, unknown>;
  const datasets = Array.isArray(e.datasets)
    ? e.datasets.map((d) => ({ ...EVAL_DEFAULTS.dataset, ...(d as object) }))
    : [];
  return {
    prompts: EVAL_DEFAULTS.prompts,
    pro: EVAL_DEFAULTS.pro,
    ...e,
    datasets,
  } as TrialConfig['eval'];
}

function recordOrigins(
  value: unknown,
  configAt: string[],
  specAt: JsonPath,
  out: Record<string, JsonPath>,
): void {
  out[configAt.join('.')] = specAt;
  if (isPlainObject(value)) {
    for (const [k, v] of Object.entries(value))
      recordOrigins(v, [...configAt, ...k.split('.')], [...specAt, k], out);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => recordOrigins(v, [...configAt, String(i)], [...specAt, i], out));
  }
}

function setPath(root: Record<string, unknown>, path: string[], value: unknown): void {
  let node = root;
  for (const seg of path.slice(0, -1)) {
    if (!isPlainObject(node[seg])) node[seg] = {};
    node = node[seg] as Record<string, unknown>;
  }
  node[path.at(-1)!] = value;
}

/** Nearest recorded origin of a config path or of one of its ancestors. */
export function originOf(
  origins: Record<string, JsonPath>,
  configPathText: string,
): JsonPath | undefined {
  for (let p = configPathText; p; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
    if (origins[p]) return origins[p];
  }
  return undefined;
}

function absolutizeRoots(
  config: TrialConfig,
  origins: Record<string, JsonPath>,
  fileOf: (o: JsonPath) => string,
): void {
  const abs = (root: unknown, at: string): string => {
    const origin = originOf(origins, at);
    return typeof root === 'string' && origin
      ? resolve(dirname(fileOf(origin)), root)
      : String(root);
  };
  if (config.train.dataset)
    config.train.dataset.root = abs(config.train.dataset.root, 'train.dataset.root');
  if (config.train.checkpoint)
    config.train.checkpoint = abs(config.train.checkpoint, 'train.checkpoint');
  config.eval.datasets.forEach((d, i) => (d.root = abs(d.root, `eval.datasets.${i}.root`)));
}

/** A trial with a later field's legacy value keeps the id it had before the field existed. */
function withoutLegacyValues(model: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(model).filter(
      ([k, v]) => !(k in LEGACY_CONFIG_VALUES) || LEGACY_CONFIG_VALUES[k] !== v,
    ),
  );
}

/**
 * Ids and keys. `weightsOf(trial)` is the backbone's weights identity; dataset roots enter
 * relative to `specDir` so a checkout elsewhere keeps its ids; micro_batch (an execution
 * detail) is left out. A trial that evaluates a checkpoint is trained by it alone: its train
 * identity is `checkpointOf(path)` (the checkpoint's content), nothing of the schedule.
 */
export function assignKeys(
  drafts: Omit<Trial, 'id' | 'trainingKey' | 'featureKey'>[],
  weightsOf: (trial: Omit<Trial, 'id' | 'trainingKey' | 'featureKey'>) => string,
  specDir: string,
  checkpointOf: (dir: string) => string = (dir) => `dir:${dir}`,
): Trial[] {
  const rel = (p: string) => relative(specDir, p).split(sep).join('/') || '.';
  return drafts.map((d) => {
    const { config } = d;
    const weights = weightsOf(d);
    const { micro_batch: _mb, ...train } = config.train;
    // Which pictures are logged changes no result.
    const { samples_per_product: _spp, ...evalIdentity } = config.eval;
    const model = withoutLegacyValues({ ...config.model, backbone: weights });
    const identity = {
      method: config.method,
      model,
      train: train.checkpoint
        ? { checkpoint: checkpointOf(train.checkpoint) }
        : { ...train, dataset: { ...train.dataset!, root: rel(train.dataset!.root) } },
      eval: {
        ...evalIdentity,
        datasets: config.eval.datasets.map((x) => ({ ...x, root: rel(x.root) })),
      },
    };
    const evalOnly = evalOnlyFields(methodDefinition(config.method));
    const trainingModel = Object.fromEntries(
      Object.entries(model).filter(([k]) => !evalOnly.includes(k)),
    );
    // The method's feature forms enter only where they differ from raw tokens and CLIP's image
    // embedding, so the keys of methods without them stay what they were.
    const forms = methodDefinition(config.method).features?.(config.model) ?? {};
    const features = {
      weights,
      activation: String(config.model.activation),
      pos_embed_resize: String(config.model.pos_embed_resize),
      image_size: Number(config.model.image_size),
      layers: [...(config.model.layers as number[])],
      ...(forms.tokens && forms.tokens !== 'raw' ? { tokens: forms.tokens } : {}),
      ...(forms.global && forms.global !== 'ln_post' ? { global: forms.global } : {}),
    };
    const featureKey: FeatureKey = { id: shortHash(withoutLegacyValues(features)), ...features };
    return {
      ...d,
      id: shortHash(identity),
      trainingKey: shortHash({
        method: config.method,
        model: trainingModel,
        train: identity.train,
      }),
      featureKey,
    };
  });
}
