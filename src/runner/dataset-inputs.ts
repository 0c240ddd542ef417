/**
 * A trial's datasets as MLflow run inputs (the runs table's Dataset column and its filters):
 * the train dataset (context `training`, its split) and each eval dataset (context
 * `evaluation`, test split), read through the same adapters the trials use. The digest is a
 * hash of the file list (images, masks, labels, defect types), so a changed dataset shows a
 * new digest under the same name.
 */
import { createHash } from 'node:crypto';
import { basename, relative } from 'node:path';
import { openDataset } from '../datasets/open.js';
import type { Sample, Split } from '../datasets/types.js';
import type { DatasetInput } from '../tracking/types.js';
import type { DatasetFormat, Products, Trial } from './spec-types.js';

/** The input tag MLflow reads the context from. */
export const DATASET_CONTEXT_TAG = 'mlflow.data.context';

/** Products listed one by one in a profile at most (the rest are summed). */
const PROFILE_PRODUCTS = 100;

export interface DatasetUseInput {
  name: string;
  root: string;
  format: DatasetFormat;
  products: Products;
  split: Split;
  context: 'training' | 'evaluation';
}

/** The datasets one trial reads. */
export function trialDatasetUses(trial: Trial): DatasetUseInput[] {
  const uses: DatasetUseInput[] = [];
  const train = trial.config.train.dataset;
  if (train && !trial.config.train.checkpoint)
    uses.push({
      name: basename(train.root.replace(/[/\\]+$/, '').replace(/\.json$/, '')),
      root: train.root,
      format: train.format,
      products: train.products,
      split: train.split,
      context: 'training',
    });
  for (const d of trial.config.eval.datasets)
    uses.push({ ...d, split: 'test', context: 'evaluation' });
  return uses;
}

/** The MLflow dataset input of one use of a dataset (its files are listed, not read). */
export async function describeDatasetUse(use: DatasetUseInput): Promise<DatasetInput> {
  const dataset = await openDataset({ root: use.root, format: use.format, products: use.products });
  const perProduct: Record<
    string,
    { images: number; anomalous: number; defects: Record<string, number> }
  > = {};
  const lines: string[] = [];
  let images = 0;
  let anomalous = 0;
  const rel = (p: string | null) => (p === null ? '' : relative(use.root, p).split('\\').join('/'));
  for (const product of dataset.products()) {
    const samples: Sample[] = dataset.samples(product, use.split);
    const entry = { images: samples.length, anomalous: 0, defects: {} as Record<string, number> };
    for (const s of samples) {
      lines.push([rel(s.imagePath), rel(s.maskPath), s.label, s.defect].join('\t'));
      entry.defects[s.defect] = (entry.defects[s.defect] ?? 0) + 1;
      if (s.label === 1) entry.anomalous++;
    }
    images += entry.images;
    anomalous += entry.anomalous;
    perProduct[product] = entry;
  }
  const products = Object.keys(perProduct);
  const listed = Object.fromEntries(Object.entries(perProduct).slice(0, PROFILE_PRODUCTS));
  const digest = createHash('sha256')
    .update(`${use.split}\n${lines.sort().join('\n')}`)
    .digest('hex')
    .slice(0, 8);
  const profile = {
    format: dataset.format,
    split: use.split,
    images,
    anomalous,
    normal: images - anomalous,
    product_count: products.length,
    products: listed,
    ...(products.length > PROFILE_PRODUCTS
      ? { products_not_listed: products.length - PROFILE_PRODUCTS }
      : {}),
  };
  const schema = {
    mlflow_colspec: [
      { type: 'string', name: 'image', required: true },
      { type: 'string', name: 'mask', required: false },
      { type: 'string', name: 'product', required: true },
      { type: 'string', name: 'defect', required: true },
      { type: 'long', name: 'label', required: true },
    ],
  };
  return {
    tags: [{ key: DATASET_CONTEXT_TAG, value: use.context }],
    dataset: {
      name: use.name,
      digest,
      source_type: 'local',
      source: JSON.stringify({ uri: use.root }),
      schema: JSON.stringify(schema),
      profile: JSON.stringify(profile),
    },
  };
}

/**
 * Describes datasets for many trials, each distinct use once. A dataset that cannot be read
 * is left out with a note (the trial itself then reports the problem).
 */
export class DatasetInputs {
  private readonly cache = new Map<string, Promise<DatasetInput | undefined>>();

  constructor(private readonly warn: (line: string) => void = () => undefined) {}

  async forTrial(trial: Trial): Promise<DatasetInput[]> {
    const out: DatasetInput[] = [];
    for (const use of trialDatasetUses(trial)) {
      const key = JSON.stringify(use);
      if (!this.cache.has(key))
        this.cache.set(
          key,
          describeDatasetUse(use).catch((error: unknown) => {
            this.warn(
              `dataset ${use.name} (${use.root}) not logged as a run input: ${(error as Error).message}`,
            );
            return undefined;
          }),
        );
      const input = await this.cache.get(key)!;
      if (input) out.push(input);
    }
    return out;
  }

  /** Every dataset the trials read, once per name, digest and use (the sweep run's inputs). */
  async forTrials(trials: readonly Trial[]): Promise<DatasetInput[]> {
    const seen = new Map<string, DatasetInput>();
    for (const t of trials)
      for (const input of await this.forTrial(t)) {
        const key = JSON.stringify([input.dataset.name, input.dataset.digest, input.tags]);
        if (!seen.has(key)) seen.set(key, input);
      }
    return [...seen.values()];
  }
}
