/**
 * `vcp-exp rerun <spec> --seeds N`: the spec with enough seeds for N per configuration. A spec
 * with a seed count (or none) continues its consecutive seeds, exactly as editing it to
 * `seeds: N` would, so that spec later finds these runs FINISHED; a spec with an explicit list
 * gets seed_k = first + 1000·k for the missing k. Existing seeds keep their trial ids, so only
 * the new trials run.
 */
import { parse } from 'yaml';
import { UserError } from '../errors.js';
import { isPlainObject, loadWithExtends } from './extends.js';
import { loadSpec } from './spec.js';
import type { Spec } from './spec-types.js';

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

/**
 * Loads `file` (with `overrides`) with `n` seeds per configuration: the seeds are one more
 * override, so the spec keeps its file, positions and relative paths.
 */
export async function loadSpecWithSeeds(
  file: string,
  n: number,
  overrides: readonly string[] = [],
): Promise<{ spec: Spec; added: number[] }> {
  if (!Number.isInteger(n) || n < 1)
    throw new UserError(`--seeds: got ${n}, expected an integer ≥ 1 (seeds per configuration)`, {
      exitCode: 2,
    });
  const original = await loadSpec(file, { overrides });
  if (original.seeds.length >= n) return { spec: original, added: [] };
  const seeds = extendSeeds(original.seeds, writtenSeeds(file, overrides), n);
  const spec = await loadSpec(file, {
    overrides: [...overrides, `seeds=${JSON.stringify(seeds)}`],
  });
  const added = spec.seeds.filter((s) => !original.seeds.includes(s));
  return { spec: { ...spec, overrides: [...overrides] }, added };
}

/** `seeds` as written: by the last override that sets it, else by the spec (with its bases). */
function writtenSeeds(file: string, overrides: readonly string[]): unknown {
  for (const o of [...overrides].reverse())
    if (/^\s*seeds\s*=/.test(o)) return parse(o.slice(o.indexOf('=') + 1));
  const merged = loadWithExtends(file).value;
  return isPlainObject(merged) ? merged.seeds : undefined;
}
