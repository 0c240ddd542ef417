/** openDataset: picks (or detects) the adapter for a dataset root and applies the product filter. */
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UserError } from '../errors.js';
import { indexFolder } from './folder.js';
import { exists, listDirs } from './fs-utils.js';
import { findMetaFile, indexMeta } from './meta.js';
import { indexMvtec } from './mvtec.js';
import type { Dataset, DatasetFormat, DatasetIndex, Sample, Split } from './types.js';
import { indexVisa, VISA_CSV } from './visa.js';

export interface OpenDatasetInput {
  /** Directory (or, for 'meta', the JSON file itself). */
  root: string;
  /** Layout; detected from the files under root when omitted. */
  format?: DatasetFormat;
  /** Only these products ('all' or absent: every one); an unknown one is an error listing the available ones. */
  products?: readonly string[] | 'all';
  /** Display name (default: the root's base name). */
  name?: string;
}

const INDEXERS = {
  mvtec: indexMvtec,
  visa: indexVisa,
  meta: indexMeta,
  folder: indexFolder,
} satisfies Record<DatasetFormat, (root: string) => Promise<DatasetIndex>>;

export const DATASET_FORMATS = Object.keys(INDEXERS) as DatasetFormat[];

/** Guesses the layout of root: VisA's split csv, a meta json, product/images, product/test|train. */
export async function detectFormat(root: string): Promise<DatasetFormat> {
  const info = await stat(root).catch(() => undefined);
  if (!info) throw new UserError(`${root}: dataset root does not exist`);
  if (info.isFile()) {
    if (root.endsWith('.json')) return 'meta';
    throw new UserError(`${root}: a dataset root must be a directory (or a meta .json file)`);
  }
  if (await exists(join(root, VISA_CSV))) return 'visa';
  if (await findMetaFile(root)) return 'meta';
  let folder = false;
  let mvtec = false;
  for (const product of await listDirs(root)) {
    const subdirs = await listDirs(join(root, product));
    if (subdirs.includes('images')) folder = true;
    if (subdirs.includes('test') || subdirs.includes('train')) mvtec = true;
  }
  if (mvtec) return 'mvtec';
  if (folder) return 'folder';
  throw new UserError(`${root}: cannot tell the dataset format`, {
    hint: `expected ${VISA_CSV} (visa), meta.json (meta), <product>/test/<defect>/ (mvtec) or <product>/images/ (folder); or pass --format`,
  });
}

/** A product filter as a list, or undefined for every product (specs write 'all'). */
export function productFilter(
  products: readonly string[] | 'all' | undefined,
): readonly string[] | undefined {
  return products === 'all' ? undefined : products;
}

/** The products a filter names that the dataset lacks (for error messages and the check). */
export function unknownProducts(
  available: readonly string[],
  wanted: readonly string[] | undefined,
): string[] {
  return (wanted ?? []).filter((p) => !available.includes(p));
}

class IndexedDataset implements Dataset {
  constructor(
    readonly name: string,
    readonly format: DatasetFormat,
    readonly root: string,
    private readonly index: DatasetIndex,
  ) {}

  products(): string[] {
    return [...this.index.keys()].sort();
  }

  samples(product: string, split: Split): Sample[] {
    const entry = this.index.get(product);
    if (!entry)
      throw new UserError(
        `dataset ${this.name}: unknown product "${product}"; available: ${this.products().join(', ')}`,
      );
    return [...entry[split]].sort((a, b) =>
      a.imagePath < b.imagePath ? -1 : a.imagePath > b.imagePath ? 1 : 0,
    );
  }
}

/** Opens a dataset; with `products`, only those (each must exist). */
export async function openDataset(input: OpenDatasetInput): Promise<Dataset> {
  const format = input.format ?? (await detectFormat(input.root));
  if (!(format in INDEXERS)) {
    throw new UserError(
      `dataset format: got "${format}", expected one of ${DATASET_FORMATS.join(', ')}`,
    );
  }
  const index = await INDEXERS[format](input.root);
  const available = [...index.keys()].sort();
  const wanted = productFilter(input.products);
  const unknown = unknownProducts(available, wanted);
  if (unknown.length > 0) {
    throw new UserError(
      `${input.root}: unknown product${unknown.length > 1 ? 's' : ''} ${unknown.map((p) => `"${p}"`).join(', ')}`,
      {
        hint: `available (${format}): ${available.join(', ') || '(none)'}`,
      },
    );
  }
  if (wanted) for (const product of available) if (!wanted.includes(product)) index.delete(product);
  const name = input.name ?? basename(input.root.replace(/[/\\]+$/, '').replace(/\.json$/, ''));
  return new IndexedDataset(name, format, input.root, index);
}

/** Every sample of one split, product by product. */
export function samplesOfSplit(dataset: Dataset, split: Split): Sample[] {
  return dataset.products().flatMap((product) => dataset.samples(product, split));
}
