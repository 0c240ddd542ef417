/**
 * `loadSpec(file)`: YAML (with positions) → `extends` merged → JSON Schema → checks across
 * fields → expanded, keyed trials. Every problem found is reported at once, each as
 * `file:line:col json-path message`, in one SpecError (exit code 2).
 *
 * Dataset roots are not required to exist when a spec is loaded (a spec is often planned on
 * one machine and run on another): a missing root is a warning here and an error when the
 * trial runs. A checkpoint-directory backbone must exist: its shapes are needed to check
 * layers, heads and image size. A checkpoint named to evaluate (train.checkpoint) is checked
 * against the trials' configs when it is here, and a warning otherwise.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { weightsIdentity, type BackboneInfo } from '../model/backbones.js';
import { resolveStateDir } from '../tracking/server.js';
import { shortHash } from './canonical.js';
import { checkNamedCheckpoints, checkTrainSource } from './checkpoint-checks.js';
import { assignKeys, expandTrials, originOf } from './expand.js';
import { describeValue, isPlainObject, loadWithExtends } from './extends.js';
import { IssueSink } from './issues.js';
import { isMethodName, unknownMethodMessage, type MethodName } from '../model/methods/index.js';
import { applyOverrides, isOverridePosition, parseOverrides } from './overrides.js';
import { experimentSchema, validateAt, validateBase } from './schema.js';
import {
  checkEval,
  checkExecution,
  checkNumbers,
  checkReport,
  checkSweepSize,
  maxTrials,
  readSeeds,
} from './spec-checks.js';
import { generatesSynthAt } from './synth-roots.js';
import { mergeEquivalentTrials } from './trial-dedupe.js';
import { formatIssue, SpecError, sortIssues, type JsonPath } from './spec-error.js';
import {
  DEFAULT_SAMPLES_PER_PRODUCT,
  EXECUTION_DEFAULTS,
  type Execution,
  type FigureSpec,
  type Spec,
  type TableSpec,
} from './spec-types.js';
import { readSweep } from './sweep-input.js';
import { checkTrials } from './trial-checks.js';

/** Sections whose errors make expansion meaningless. */
const EXPANSION_INPUTS = new Set(['base', 'train', 'eval', 'sweep', 'seeds', 'method']);

export interface LoadSpecOptions {
  /** Command-line `key=value` overrides (src/runner/overrides.ts), applied after `extends`. */
  overrides?: readonly string[];
  /**
   * Expand with these seeds instead of the spec's (the report's view of a spec whose sweep
   * points gained seeds through `rerun --seeds`); ids are computed exactly as for the spec's.
   */
  seeds?: readonly number[];
}

export async function loadSpec(file: string, options: LoadSpecOptions = {}): Promise<Spec> {
  const written = loadWithExtends(file);
  const rootFile = written.chain[0];
  const overrides = options.overrides ?? [];
  const parsed = parseOverrides(overrides, Object.keys(experimentSchema.properties ?? {}));
  const merged =
    written.value === undefined || overrides.length === 0
      ? { ...written, issues: [...written.issues, ...parsed.issues] }
      : (() => {
          const applied = applyOverrides(written, parsed.overrides);
          return {
            ...written,
            value: applied.value,
            locate: applied.locate,
            issues: [...written.issues, ...parsed.issues, ...applied.issues],
          };
        })();
  const sink = new IssueSink(merged.locate, rootFile);
  sink.issues.push(...merged.issues);
  const raw = merged.value;
  if (raw === undefined || merged.issues.some((i) => i.severity === 'error'))
    throw new SpecError(sink.issues);
  if (!isPlainObject(raw)) {
    sink.error(
      [],
      'value',
      `got ${raw === null ? 'an empty document' : describeValue(raw)}, expected a map of spec sections (name, base, sweep, train, eval, …)`,
    );
    throw new SpecError(sink.issues);
  }

  checkNumbers(raw, sink);
  for (const p of validateAt('', raw)) sink.error(p.path, p.at, p.message);
  const method = readMethod(raw, sink);
  const axes = readSweep(raw.sweep, sink, method);
  const limit = maxTrials(raw);
  const seeds = options.seeds ? [...options.seeds] : readSeeds(raw, sink, limit);
  const sized = seeds.length === 0 || checkSweepSize(axes, seeds.length, limit, sink);
  checkTrainSource(raw, sink);
  const datasetNames = checkEval(raw, sink);
  const axisNames = axes.flatMap((a) => a.names);
  checkReport(raw, axisNames, datasetNames, sink);
  const workers = checkExecution(raw, sink);

  const blocked = sink.issues.some(
    (i) =>
      i.severity === 'error' && (i.path.length === 0 || EXPANSION_INPUTS.has(String(i.path[0]))),
  );
  let trials: Spec['trials'] = [];
  if (!blocked && sized) {
    const drafts = expandTrials({
      method,
      base: (raw.base ?? {}) as Record<string, unknown>,
      train: raw.train as Record<string, unknown>,
      eval: withSampleCount(raw),
      axes,
      seeds,
      seedOrigin: (i) =>
        Array.isArray(raw.seeds)
          ? ['seeds', i]
          : raw.seeds !== undefined
            ? ['seeds']
            : isPlainObject(raw.base) && raw.base.seed !== undefined
              ? ['base', 'seed']
              : [],
      fileOf: (origin) => {
        // A value given on the command line is relative to the working directory.
        const where = sink.position(origin, 'value').file;
        return isOverridePosition(where) ? resolve('command-line') : where;
      },
    });
    const backbones = checkTrials(drafts, sink, rootFile);
    const checkpoints = sink.errorCount === 0 ? await checkNamedCheckpoints(drafts, sink) : null;
    if (sink.errorCount === 0) {
      const identities = new Map<BackboneInfo, string>();
      for (const info of new Set(backbones))
        if (info) identities.set(info, await weightsIdentity(info));
      trials = mergeEquivalentTrials(
        assignKeys(
          drafts,
          (d) => identities.get(backbones[d.index]!)!,
          dirname(resolve(rootFile)),
          (dir) => checkpoints!.get(dir)!,
        ),
        sink,
      );
      warnMissingRoots(trials, sink);
    }
  }
  if (sink.errorCount > 0) throw new SpecError(sink.issues);

  const writtenExecution = raw.execution as Partial<Execution> | undefined;
  const execution: Execution = {
    ...EXECUTION_DEFAULTS,
    ...writtenExecution,
    workers,
    feature_cache: { ...EXECUTION_DEFAULTS.feature_cache, ...writtenExecution?.feature_cache },
  };
  if (execution.shared_dir !== undefined) {
    // Relative to the file that names it (a base spec may set it for its children).
    const file = sink.position(['execution', 'shared_dir'], 'value').file;
    execution.shared_dir = resolve(dirname(resolve(file)), execution.shared_dir);
  }
  const report = (raw.report ?? {}) as Spec['report'] & {
    tables?: TableSpec[];
    figures?: FigureSpec[];
  };
  const tracking = (raw.tracking ?? {}) as { uri?: string; experiment?: string };
  return {
    file: rootFile,
    chain: merged.chain,
    name: raw.name as string,
    description: (raw.description as string | undefined) ?? '',
    method,
    seeds,
    axes: axisNames,
    report: {
      tables: report.tables ?? [],
      figures: report.figures ?? [],
      ...(report.head_to_head ? { head_to_head: report.head_to_head } : {}),
    },
    execution,
    tracking: { uri: tracking.uri, experiment: tracking.experiment ?? (raw.name as string) },
    trials,
    warnings: sortIssues(sink.issues).map(formatIssue),
    hash: shortHash(raw),
    overrides: [...overrides],
  };
}

/**
 * The spec's method (default vcp-clip), and `base` checked against that method's config
 * schema. An unknown method is reported; the default's schema then stands in for the axes.
 */
function readMethod(raw: Record<string, unknown>, sink: IssueSink): MethodName {
  const written = raw.method ?? 'vcp-clip';
  if (!isMethodName(written)) {
    sink.error(['method'], 'value', unknownMethodMessage(written));
    return 'vcp-clip';
  }
  if (raw.base !== undefined)
    for (const p of validateBase(written, raw.base))
      sink.error(['base', ...p.path], p.at, p.message);
  return written;
}

/**
 * `eval` with `samples_per_product` filled: as written, else the most pictures per product a
 * samples or attention figure asks for (max_items), at least DEFAULT_SAMPLES_PER_PRODUCT.
 */
function withSampleCount(raw: Record<string, unknown>): Record<string, unknown> {
  const evalSection = (raw.eval ?? {}) as Record<string, unknown>;
  if (evalSection.samples_per_product !== undefined) return evalSection;
  const figures =
    isPlainObject(raw.report) && Array.isArray(raw.report.figures) ? raw.report.figures : [];
  const asked = figures
    .filter((f) => isPlainObject(f) && (f.kind === 'samples' || f.kind === 'attention'))
    .map((f) => Number((f as Record<string, unknown>).max_items ?? 0))
    .filter((n) => Number.isInteger(n));
  return {
    ...evalSection,
    samples_per_product: Math.max(DEFAULT_SAMPLES_PER_PRODUCT, ...asked),
  };
}

/** The end of the warning about a synthetic root to be generated (run generates it first). */
export const SYNTH_ROOT_NOTE = 'vcp-exp run generates the synthetic dataset there';

/** A dataset root that does not exist here: a warning at load, an error when the trial runs. */
function warnMissingRoots(trials: Spec['trials'], sink: IssueSink): void {
  const warned = new Set<string>();
  const warn = (root: string, origin: JsonPath | undefined, what: string) => {
    if (warned.has(root) || existsSync(root)) return;
    warned.add(root);
    sink.warning(
      origin ?? [],
      'value',
      generatesSynthAt(root, resolveStateDir())
        ? `${what} root ${root} does not exist yet; ${SYNTH_ROOT_NOTE}`
        : `${what} root ${root} does not exist here; the trials that use it will fail when they run (create it, e.g. vcp-exp data synth, or fix the path)`,
    );
  };
  for (const t of trials) {
    if (t.config.train.dataset)
      warn(t.config.train.dataset.root, originOf(t.origins, 'train.dataset.root'), 'train dataset');
    t.config.eval.datasets.forEach((d, i) =>
      warn(d.root, originOf(t.origins, `eval.datasets.${i}.root`), `eval dataset ${d.name}`),
    );
  }
}
