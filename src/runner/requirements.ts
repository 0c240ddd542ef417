/**
 * What a spec's trials need on this machine before any of them can run: the CLIP weights of
 * each backbone (known architectures are pulled into the cache with `vcp-exp weights pull`),
 * a checkpoint named to evaluate, and each dataset root (synthetic roots under
 * `<state>/data/` excepted: `vcp-exp run` generates them). `plan` lists
 * what is missing; `run` refuses to start while anything is.
 */
import { existsSync } from 'node:fs';
import { UserError } from '../errors.js';
import { backboneDir } from '../model/backbones.js';
import { resolveStateDir } from '../tracking/server.js';
import type { Spec } from './spec-types.js';
import { generatesSynthAt, missingRootHint } from './synth-roots.js';

/** One line per missing thing: what, where, and how to get it. */
export function missingRequirements(spec: Spec, stateDir = resolveStateDir()): string[] {
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
  const checkpoints = new Set<string>();
  for (const t of spec.trials) {
    const { dataset, checkpoint } = t.config.train;
    if (dataset) roots.set(dataset.root, `train dataset (${dataset.format})`);
    if (checkpoint) checkpoints.add(checkpoint);
    for (const d of t.config.eval.datasets)
      roots.set(d.root, `eval dataset ${d.name} (${d.format})`);
  }
  for (const dir of checkpoints)
    if (!existsSync(dir))
      missing.push(
        `checkpoint to evaluate (train.checkpoint): ${dir} does not exist; write it with vcp-exp import vcp-clip <file.pth> --clip <CLIP> --out ${dir}, or fix the path`,
      );
  for (const [root, what] of roots)
    if (!existsSync(root) && !generatesSynthAt(root, stateDir))
      missing.push(`${what}: ${root} does not exist; ${missingRootHint(root, stateDir)}`);
  return missing;
}
