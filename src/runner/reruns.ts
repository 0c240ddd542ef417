/**
 * `vcp-exp rerun <spec> --seeds N`: the spec with enough seeds for N per configuration. A spec
 * with a seed count (or none) continues its consecutive seeds, exactly as editing it to
 * `seeds: N` would, so that spec later finds these runs FINISHED; a spec with an explicit list
 * gets seed_k = first + 1000·k for the missing k. Existing seeds keep their trial ids, so only
 * the new trials run.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { isPlainObject } from './extends.js';
import { loadSpec } from './spec.js';
import type { Spec } from './spec-types.js';
import { loadYamlFile } from './yaml-source.js';

/** The seeds a spec written with `seeds` (count, list or absent) has once extended to `n`. */
export function extendSeeds(
  current: readonly number[],
  written: unknown,
  n: number,
): number[] | number {
  if (!Array.isArray(written)) return Math.max(n, current.length);
  const out = [...current];
  for (let k = out.length; out.length < n; k++) {
    const seed = current[0] + 1000 * k;
    if (!out.includes(seed)) out.push(seed);
  }
  return out;
}

/** Loads `file` with `n` seeds per configuration; the spec keeps its own file name. */
export async function loadSpecWithSeeds(
  file: string,
  n: number,
): Promise<{ spec: Spec; added: number[] }> {
  if (!Number.isInteger(n) || n < 1)
    throw new UserError(`--seeds: got ${n}, expected an integer ≥ 1 (seeds per configuration)`, {
      exitCode: 2,
    });
  const original = await loadSpec(file);
  if (original.seeds.length >= n) return { spec: original, added: [] };
  const raw = loadYamlFile(file).value; // bounded like every spec read
  const seeds = extendSeeds(original.seeds, isPlainObject(raw) ? raw.seeds : undefined, n);
  // Written beside the spec: dataset roots and ids stay relative to the same directory.
  const overlay = join(dirname(file), `.${basename(file)}.seeds-${n}-${process.pid}.yaml`);
  writeFileSync(overlay, `extends: ./${basename(file)}\nseeds: ${JSON.stringify(seeds)}\n`);
  try {
    const spec = await loadSpec(overlay);
    const added = spec.seeds.filter((s) => !original.seeds.includes(s));
    return { spec: { ...spec, file: original.file, chain: original.chain }, added };
  } finally {
    rmSync(overlay, { force: true });
  }
}
