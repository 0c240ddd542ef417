/**
 * What a spec's trials need on this machine before any of them can run: the CLIP weights of
 * each backbone (known architectures are pulled into the cache with `vcp-exp weights pull`)
 * and each dataset root (synthetic roots excepted: `vcp-exp run` generates them). `plan` lists
 * what is missing; `run` refuses to start while anything is.
 */
import { existsSync } from 'node:fs';
import { isSynthRoot } from '../datasets/synth.js';
import { UserError } from '../errors.js';
import { backboneDir } from '../model/backbones.js';
import type { Spec } from './spec-types.js';

/** One line per missing thing: what, where, and how to get it. */
export function missingRequirements(spec: Spec): string[] {
  const missing: string[] = [];
  const backbones = new Set(spec.trials.map((t) => String(t.config.model.backbone)));
  for (const backbone of backbones) {
    try {
      backboneDir(backbone);
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      missing.push(
        `CLIP weights of ${backbone}: ${error.message}${error.hint ? `; ${error.hint}` : ''}`,
      );
    }
  }
  const roots = new Map<string, string>();
  for (const t of spec.trials) {
    const train = t.config.train.dataset;
    roots.set(train.root, `train dataset (${train.format})`);
    for (const d of t.config.eval.datasets)
      roots.set(d.root, `eval dataset ${d.name} (${d.format})`);
  }
  for (const [root, what] of roots)
    if (!existsSync(root) && !isSynthRoot(root))
      missing.push(
        `${what}: ${root} does not exist; put the dataset there or edit the spec's root`,
      );
  return missing;
}
