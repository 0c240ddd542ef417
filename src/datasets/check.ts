/**
 * Validation scan run before any training or evaluation: finds every problem of a dataset
 * (unknown products, empty products, missing masks, unreadable or truncated files, mask/image
 * size mismatches) and reports them all at once rather than failing on the first one mid-run.
 * A set whose anomalous images have no masks at all has image labels only (not a problem).
 */
import { UserError } from '../errors.js';
import { readImageRgb, readImageSize } from './image-io.js';
import { openDataset, productFilter, unknownProducts, type OpenDatasetInput } from './open.js';
import type { Dataset, Sample, Split } from './types.js';

export interface DatasetProblem {
  /** The file (or dataset root) concerned. */
  path: string;
  problem: string;
}

export interface SplitCounts {
  good: number;
  anomalous: number;
}

export interface DatasetCheck {
  dataset: Dataset;
  counts: { product: string; train: SplitCounts; test: SplitCounts }[];
  problems: DatasetProblem[];
  /**
   * No anomalous image has a mask (e.g. HeadCT, BrainMRI, Br35H): a set with image labels only,
   * fine for evaluation (its pixel metrics are skipped), not for training.
   */
  imageLabelsOnly: boolean;
}

/**
 * Files already decoded without error and unchanged since (the caller decides how it knows:
 * e.g. size, mtime and inode remembered on disk); they are then checked from their header.
 */
export interface DecodedFiles {
  has(path: string): Promise<boolean>;
  add(path: string): Promise<void>;
}

export interface CheckOptions extends OpenDatasetInput {
  /** Decode every pixel (finds truncated files) or read headers only. (default true) */
  decode?: boolean;
  /** With decode: files known to decode, which are not decoded again. */
  decoded?: DecodedFiles;
  /** Files read at once. (default 4) */
  concurrency?: number;
  /** Training needs masks: a set with image labels only is then a problem. (default false) */
  requireMasks?: boolean;
}

async function dimensions(
  path: string,
  decode: boolean,
  decoded: DecodedFiles | undefined,
): Promise<{ width: number; height: number }> {
  if (!decode || (await decoded?.has(path))) return readImageSize(path);
  const { width, height } = await readImageRgb(path);
  await decoded?.add(path);
  return { width, height };
}

/** Runs jobs with at most `limit` in flight. */
async function pool<T>(
  items: readonly T[],
  limit: number,
  job: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await job(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function message(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/^[^:]*: /, ''); // the path is reported separately
}

/** Scans the dataset; never throws for problems in the data, only lists them. */
export async function checkDataset(options: CheckOptions): Promise<DatasetCheck> {
  const decode = options.decode ?? true;
  const all = await openDataset({ ...options, products: undefined });
  const problems: DatasetProblem[] = [];
  const filter = productFilter(options.products);
  const unknown = unknownProducts(all.products(), filter);
  for (const product of unknown) {
    problems.push({
      path: options.root,
      problem: `unknown product "${product}" (available: ${all.products().join(', ') || 'none'})`,
    });
  }
  const wanted = filter ? filter.filter((p) => !unknown.includes(p)) : undefined;
  const dataset = wanted
    ? await openDataset({ ...options, format: all.format, products: wanted })
    : all;

  const counts: DatasetCheck['counts'] = [];
  const seen = new Set<string>();
  const samples: Sample[] = [];
  for (const product of dataset.products()) {
    const count = (split: Split): SplitCounts => {
      const list = dataset.samples(product, split);
      for (const s of list) {
        if (seen.has(s.imagePath)) continue; // the folder format lists each image in both splits
        seen.add(s.imagePath);
        samples.push(s);
      }
      return {
        good: list.filter((s) => s.label === 0).length,
        anomalous: list.filter((s) => s.label === 1).length,
      };
    };
    const entry = { product, train: count('train'), test: count('test') };
    counts.push(entry);
    if (entry.train.good + entry.train.anomalous + entry.test.good + entry.test.anomalous === 0) {
      problems.push({
        path: `${dataset.root} (product ${product})`,
        problem: 'empty product: no images found',
      });
    }
  }

  const anomalous = samples.filter((s) => s.label === 1);
  const imageLabelsOnly = anomalous.length > 0 && anomalous.every((s) => s.maskPath === null);
  if (imageLabelsOnly && options.requireMasks) {
    problems.push({
      path: dataset.root,
      problem:
        'image labels only (no anomalous image has a mask): such a set can be evaluated (its pixel metrics are skipped) but not trained on',
    });
  }
  await pool(samples, options.concurrency ?? 4, async (sample) => {
    let image: { width: number; height: number } | undefined;
    try {
      image = await dimensions(sample.imagePath, decode, options.decoded);
    } catch (error) {
      problems.push({ path: sample.imagePath, problem: `unreadable image: ${message(error)}` });
    }
    // A missing mask is a problem where other anomalous images have one.
    if (sample.label === 1 && sample.maskPath === null && !imageLabelsOnly) {
      problems.push({
        path: sample.imagePath,
        problem: `missing mask for an anomalous image (defect "${sample.defect}")`,
      });
    }
    if (sample.maskPath === null) return;
    try {
      const mask = await dimensions(sample.maskPath, decode, options.decoded);
      if (image && (mask.width !== image.width || mask.height !== image.height)) {
        problems.push({
          path: sample.maskPath,
          problem: `mask is ${mask.width}×${mask.height} but its image ${sample.imagePath} is ${image.width}×${image.height}`,
        });
      }
    } catch (error) {
      problems.push({ path: sample.maskPath, problem: `unreadable mask: ${message(error)}` });
    }
  });
  problems.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { dataset, counts, problems, imageLabelsOnly };
}

/** One UserError listing every problem. */
export function problemsError(root: string, problems: readonly DatasetProblem[]): UserError {
  const lines = problems.map((p) => `  ${p.path}: ${p.problem}`);
  return new UserError(
    `dataset ${root}: ${problems.length} problem${problems.length > 1 ? 's' : ''}\n${lines.join('\n')}`,
    {
      hint: 'fix or remove these files (or adjust the product list), then run `vcp-exp data check` again',
    },
  );
}

/** Opens a dataset after a full scan; throws one UserError listing every problem found. */
export async function openCheckedDataset(options: CheckOptions): Promise<Dataset> {
  const { dataset, problems } = await checkDataset(options);
  if (problems.length > 0) throw problemsError(options.root, problems);
  return dataset;
}
