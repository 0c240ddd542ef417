/**
 * The dataset checks `plan` and `run` make before any trial, the same in both: every dataset a
 * spec uses (distinct root, format and products) is scanned like `vcp-exp data check` (unknown
 * or empty products, unreadable or truncated images, missing masks, size mismatches; every
 * image decoded once, then remembered), and its product names must map to distinct MLflow
 * keys. All problems of all datasets come back together, so one command shows every one.
 */
import { existsSync } from 'node:fs';
import { checkDataset, type DatasetProblem } from '../datasets/check.js';
import type { DatasetFormat } from '../datasets/types.js';
import { UserError } from '../errors.js';
import { productKey } from '../tracking/artifact-names.js';
import { DecodedFilesRecord } from './decoded-files.js';
import type { Trial } from './spec-types.js';

export interface DatasetUse {
  /** "train dataset", "eval dataset MVTec", … (all uses of one root). */
  labels: string[];
  root: string;
  format: DatasetFormat;
  products: 'all' | string[];
}

export interface DatasetReport {
  use: DatasetUse;
  /** False when the root does not exist here. */
  exists: boolean;
  problems: DatasetProblem[];
  /** Product names that are logged under another key (name → key). */
  renamed: [string, string][];
}

/** The distinct datasets the trials use. */
export function datasetUses(trials: readonly Trial[]): DatasetUse[] {
  const uses = new Map<string, DatasetUse>();
  const add = (
    label: string,
    d: { root: string; format: DatasetFormat; products?: 'all' | string[] },
  ) => {
    const products = d.products ?? 'all';
    const key = JSON.stringify([d.root, d.format, products]);
    const use = uses.get(key) ?? { labels: [], root: d.root, format: d.format, products };
    if (!use.labels.includes(label)) use.labels.push(label);
    uses.set(key, use);
  };
  for (const t of trials) {
    if (t.config.train.dataset) add('train dataset', t.config.train.dataset);
    for (const d of t.config.eval.datasets) add(`eval dataset ${d.name}`, d);
  }
  return [...uses.values()];
}

/** Products of one dataset whose MLflow keys collide, as problems. */
export function keyCollisions(root: string, products: readonly string[]): DatasetProblem[] {
  const byKey = new Map<string, string[]>();
  for (const p of products) byKey.set(productKey(p), [...(byKey.get(productKey(p)) ?? []), p]);
  return [...byKey]
    .filter(([, names]) => names.length > 1)
    .map(([key, names]) => ({
      path: root,
      problem: `products ${names.map((n) => JSON.stringify(n)).join(' and ')} would all be logged as "${key}" (MLflow keys keep only A-Z a-z 0-9 _ -); rename all but one`,
    }));
}

export interface PreflightOptions {
  /** Where decoded files are remembered (the state directory). */
  stateDir: string;
  /** Told before a dataset is scanned. */
  onDataset?: (use: DatasetUse) => void;
}

/** Scans every dataset the trials use; never throws for problems in the data. */
export async function preflightDatasets(
  trials: readonly Trial[],
  options: PreflightOptions,
): Promise<DatasetReport[]> {
  const reports: DatasetReport[] = [];
  for (const use of datasetUses(trials)) {
    if (!existsSync(use.root)) {
      reports.push({ use, exists: false, problems: [], renamed: [] });
      continue;
    }
    options.onDataset?.(use);
    const decoded = new DecodedFilesRecord(options.stateDir, use.root);
    const problems: DatasetProblem[] = [];
    let renamed: [string, string][] = [];
    try {
      const check = await checkDataset({
        ...use,
        decode: true,
        decoded,
        requireMasks: use.labels.includes('train dataset'),
      });
      problems.push(...check.problems);
      const names = check.dataset.products();
      problems.push(...keyCollisions(use.root, names));
      renamed = names.filter((p) => productKey(p) !== p).map((p) => [p, productKey(p)]);
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      const problem = error.message.replace(`${use.root}: `, '');
      problems.push({
        path: use.root,
        problem: error.hint ? `${problem} (${error.hint})` : problem,
      });
    } finally {
      await decoded.save();
    }
    reports.push({ use, exists: true, problems, renamed });
  }
  return reports;
}

/** One error listing every problem of every dataset (missing roots too when `requireRoots`), or undefined. */
export function preflightError(
  reports: readonly DatasetReport[],
  requireRoots: boolean,
): UserError | undefined {
  const lines: string[] = [];
  let count = 0;
  for (const r of reports) {
    const problems = [...r.problems];
    if (!r.exists && requireRoots)
      problems.push({ path: r.use.root, problem: 'dataset root does not exist' });
    if (problems.length === 0) continue;
    count += problems.length;
    lines.push(`${r.use.labels.join(', ')} at ${r.use.root}:`);
    lines.push(...problems.map((p) => `  ${p.path}: ${p.problem}`));
  }
  if (count === 0) return undefined;
  return new UserError(
    `${count} dataset problem${count === 1 ? '' : 's'}, nothing was run:\n${lines.join('\n')}`,
    {
      exitCode: 2,
      hint: "fix or remove these files (or the spec's product lists; `vcp-exp data check <root>` re-checks one dataset), then run the command again",
    },
  );
}

/** "product "a+b" of <root> is logged as "a_b"" lines. */
export function renamedProductNotes(reports: readonly DatasetReport[]): string[] {
  return reports.flatMap((r) =>
    r.renamed.map(
      ([name, key]) =>
        `note: product ${JSON.stringify(name)} of ${r.use.root} is logged in MLflow as "${key}" (keys keep only A-Z a-z 0-9 _ -)`,
    ),
  );
}
