/**
 * Specs that name a checkpoint to evaluate instead of training (`train.checkpoint`): `train`
 * needs a dataset or a checkpoint; a checkpoint that is here must be one of the spec's method
 * whose config agrees with every trial's (evaluation-only fields such as alpha and sigma may
 * differ), and it is identified by the sha256 of its weights; one that is not here is a warning
 * at load (as a missing dataset root is) and an error when its trials run.
 */
import { evalOnlyFields } from '../model/methods/config.js';
import { methodDefinition } from '../model/methods/index.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CHECKPOINT_CONFIG,
  CHECKPOINT_WEIGHTS,
  LEGACY_CONFIG_VALUES,
} from '../model/checkpoint-format.js';
import { sha256File } from '../model/clip/weights.js';
import { canonicalJson } from './canonical.js';
import { originOf } from './expand.js';
import { isPlainObject } from './extends.js';
import type { IssueSink } from './issues.js';
import { show } from '../io/wording.js';
import type { JsonPath } from './spec-error.js';
import type { Trial } from './spec-types.js';

type Draft = Omit<Trial, 'id' | 'trainingKey' | 'featureKey'>;

/** `train` must say what the trials start from: a dataset to train on or a checkpoint. */
export function checkTrainSource(spec: Record<string, unknown>, sink: IssueSink): void {
  const train = spec.train;
  if (!isPlainObject(train) || train.dataset !== undefined || train.checkpoint !== undefined)
    return;
  sink.error(
    ['train'],
    'key',
    'missing required key "dataset" (the auxiliary dataset to train on), or "checkpoint" (a checkpoint to evaluate instead of training)',
  );
}

/** A config value in full (paths included), unlike show(). */
const json = (value: unknown) => JSON.stringify(value) ?? 'nothing';

const isCheckpoint = (dir: string) =>
  existsSync(join(dir, CHECKPOINT_CONFIG)) && existsSync(join(dir, CHECKPOINT_WEIGHTS));

/**
 * Checks the named checkpoints against the trials' resolved configs; returns the identity of
 * each checkpoint (`sha256:<16 hex>` of its weights, or `dir:<path>` while it is not here).
 */
export async function checkNamedCheckpoints(
  trials: readonly Draft[],
  sink: IssueSink,
): Promise<Map<string, string>> {
  const identities = new Map<string, string>();
  const reported = new Set<string>();
  const issue = (kind: 'error' | 'warning', path: JsonPath, message: string) => {
    const key = `${kind}\u0000${path.join('.')}\u0000${message}`;
    if (reported.has(key)) return;
    reported.add(key);
    sink[kind](path, 'value', message);
  };
  for (const trial of trials) {
    const dir = trial.config.train.checkpoint;
    if (!dir) continue;
    const at = originOf(trial.origins, 'train.checkpoint') ?? ['train', 'checkpoint'];
    if (!existsSync(dir)) {
      identities.set(dir, `dir:${dir}`);
      issue(
        'warning',
        at,
        `checkpoint ${dir} does not exist here; the trials that use it will fail when they run (write it with vcp-exp import vcp-clip <file.pth> --clip <CLIP> --out ${dir}, or fix the path)`,
      );
      continue;
    }
    if (!isCheckpoint(dir)) {
      issue(
        'error',
        at,
        `got ${dir}, expected a vcp-exp checkpoint directory (${CHECKPOINT_CONFIG} and ${CHECKPOINT_WEIGHTS}), as vcp-exp train or vcp-exp import writes`,
      );
      continue;
    }
    if (!identities.has(dir))
      identities.set(
        dir,
        `sha256:${(await sha256File(join(dir, CHECKPOINT_WEIGHTS))).slice(0, 16)}`,
      );
    let saved: { method?: unknown; config?: unknown };
    try {
      saved = JSON.parse(readFileSync(join(dir, CHECKPOINT_CONFIG), 'utf8')) as typeof saved;
    } catch (error) {
      issue(
        'error',
        at,
        `${join(dir, CHECKPOINT_CONFIG)} is not valid JSON (${(error as Error).message})`,
      );
      continue;
    }
    if (saved.method !== trial.config.method || !isPlainObject(saved.config)) {
      issue(
        'error',
        at,
        `the checkpoint ${dir} is of method ${show(saved.method)}, the spec's is ${show(trial.config.method)}`,
      );
      continue;
    }
    const evalOnly = evalOnlyFields(methodDefinition(trial.config.method));
    for (const [field, value] of Object.entries({ ...LEGACY_CONFIG_VALUES, ...saved.config })) {
      if (evalOnly.includes(field)) continue;
      const mine = trial.config.model[field];
      if (canonicalJson(mine) === canonicalJson(value)) continue;
      const written = Object.keys(trial.origins).includes(`model.${field}`)
        ? originOf(trial.origins, `model.${field}`)
        : undefined;
      issue(
        'error',
        written ?? at,
        written
          ? `got ${field} ${json(mine)}, but the checkpoint ${dir} has ${json(value)} (only evaluation-only fields, ${evalOnly.join(', ')}, may differ from it)`
          : `the checkpoint ${dir} has ${field} ${json(value)}, the trial's (default) is ${json(mine)}: set base.${field}: ${json(value)}`,
      );
    }
  }
  return identities;
}
