import { checkDataset, problemsError } from '../datasets/check.js';
import { DATASET_FORMATS } from '../datasets/open.js';
import { generateSynthDataset } from '../datasets/synth.js';
import type { DatasetFormat } from '../datasets/types.js';
import { UserError } from '../errors.js';
import { keyCollisions } from '../runner/dataset-preflight.js';
import { productKey } from '../tracking/artifact-names.js';

export interface DataCommandOptions {
  format?: string;
  products?: string | number;
  quick?: boolean;
  seed?: number;
  size?: number;
  trainGood?: number;
  testGood?: number;
  testDefect?: number;
}

function list(value: string | number | undefined): string[] | undefined {
  if (value === undefined || value === '') return undefined;
  return String(value)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function integer(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new UserError(`--${name}: got "${String(value)}", expected a non-negative integer`);
  return n;
}

/** `vcp-exp data check <root>`: per-product counts, or every problem and a non-zero exit. */
async function check(root: string, options: DataCommandOptions): Promise<void> {
  const format = options.format as DatasetFormat | undefined;
  if (format !== undefined && !DATASET_FORMATS.includes(format)) {
    throw new UserError(`--format: got "${format}", expected one of ${DATASET_FORMATS.join(', ')}`);
  }
  const { dataset, counts, problems, imageLabelsOnly } = await checkDataset({
    root,
    format,
    products: list(options.products),
    decode: !options.quick,
  });
  console.log(`dataset ${dataset.name} (${dataset.format}) at ${root}`);
  const rows = counts.map((c) =>
    [c.product, c.train.good, c.train.anomalous, c.test.good, c.test.anomalous].map(String),
  );
  const header = ['product', 'train good', 'train anomalous', 'test good', 'test anomalous'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const row of [header, ...rows])
    console.log(
      row
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
        .join('  '),
    );
  const names = counts.map((c) => c.product);
  for (const name of names.filter((p) => productKey(p) !== p))
    console.log(
      `note: product ${JSON.stringify(name)} is logged in MLflow as "${productKey(name)}"`,
    );
  problems.push(...keyCollisions(root, names));
  if (problems.length > 0) throw problemsError(root, problems);
  if (imageLabelsOnly)
    console.log(
      'image labels only (no anomalous image has a mask): evaluation skips the pixel metrics; not usable for training',
    );
  console.log(`ok: ${counts.length} product${counts.length === 1 ? '' : 's'}, no problems`);
}

/** `vcp-exp data synth <out-dir>`: writes the synthetic dataset in MVTec-AD layout. */
async function synth(outDir: string, options: DataCommandOptions): Promise<void> {
  const start = performance.now();
  const summary = await generateSynthDataset(outDir, {
    seed: integer('seed', options.seed),
    products: list(options.products),
    size: integer('size', options.size),
    trainGood: integer('train-good', options.trainGood),
    testGood: integer('test-good', options.testGood),
    testDefect: integer('test-defect', options.testDefect),
  });
  for (const p of summary.products) {
    const defects = Object.entries(p.defects)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
    console.log(`${p.product}: train/good ${p.trainGood}, test/good ${p.testGood}, ${defects}`);
  }
  console.log(
    `wrote ${summary.files} files to ${outDir} in ${((performance.now() - start) / 1000).toFixed(1)} s`,
  );
}

const ACTIONS = { check, synth } satisfies Record<
  string,
  (dir: string, options: DataCommandOptions) => Promise<void>
>;

/** `vcp-exp data <check|synth> <dir>`. */
export async function dataCommand(
  action: string,
  dir: string,
  options: DataCommandOptions,
): Promise<void> {
  if (!(action in ACTIONS))
    throw new UserError(
      `data ${action}: unknown action; expected one of ${Object.keys(ACTIONS).join(', ')}`,
      { exitCode: 2 },
    );
  await ACTIONS[action as keyof typeof ACTIONS](dir, options);
}
