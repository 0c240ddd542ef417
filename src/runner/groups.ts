/**
 * Evaluation groups: trials that share their training and their test-time forward pass. Two
 * trials belong together when they have the same training key and differ only in the method's
 * post-forward fields (schema `x-post-forward`, e.g. VCP-CLIP's α, σ, image-score rule and
 * top-k): one process trains (or reuses) once, runs the method once per test image and reads
 * the output out per member (src/model/infer.ts evaluateDatasetGroup). Test-time prompts
 * (`eval.prompts`) change the forward, so they are part of the group key.
 */
import { methodDefinition } from '../model/methods/index.js';
import { postForwardFields } from '../model/methods/config.js';
import { shortHash } from './canonical.js';
import type { Spec, Trial } from './spec-types.js';

/** Largest evaluation group by default: memory holds one product's raw maps per member. */
export const DEFAULT_MAX_GROUP = 8;

/** The largest group a spec's executor forms: Slurm array tasks run one trial each. */
export function maxGroupOf(spec: Pick<Spec, 'execution'>): number {
  return spec.execution.executor === 'slurm' ? 1 : spec.execution.eval_group_size;
}

function fieldsOf(trial: Trial): string[] {
  return postForwardFields(methodDefinition(trial.config.method));
}

/** The values of a trial's post-forward fields (what its member of a group reads out with). */
export function postForwardSettings(trial: Trial): Record<string, unknown> {
  const fields = fieldsOf(trial);
  return Object.fromEntries(Object.entries(trial.config.model).filter(([k]) => fields.includes(k)));
}

/**
 * What a group's members have in common: the training, the whole evaluation section, the
 * evaluation batch and every model field that is not post-forward.
 */
export function groupKey(trial: Trial): string {
  const fields = fieldsOf(trial);
  return shortHash({
    training: trial.trainingKey,
    method: trial.config.method,
    model: Object.fromEntries(
      Object.entries(trial.config.model).filter(([k]) => !fields.includes(k)),
    ),
    eval: trial.config.eval,
    micro_batch: trial.config.train.micro_batch,
  });
}

/**
 * Partitions trials into evaluation groups of at most `maxSize` (1 = every trial alone), in the
 * order of each group's first trial; members keep their order.
 */
export function formGroups(trials: readonly Trial[], maxSize = DEFAULT_MAX_GROUP): Trial[][] {
  const size = Math.max(1, Math.floor(maxSize));
  const open = new Map<string, Trial[]>();
  const groups: Trial[][] = [];
  for (const trial of trials) {
    const key = groupKey(trial);
    let group = open.get(key);
    if (!group || group.length >= size) {
      group = [];
      open.set(key, group);
      groups.push(group);
    }
    group.push(trial);
  }
  return groups;
}
