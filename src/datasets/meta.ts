/**
 * The public VCP-CLIP / APRIL-GAN meta.json format, used for BSD, GC, KSDD2, MSD, Road, RSDD,
 * BTech, DAGM: {"train": {...}, "test": {"<cls>": [{img_path, mask_path, cls_name,
 * specie_name, anomaly}]}}; paths relative to the directory holding the JSON (absolute kept),
 * mask_path "" for a normal image. VCP-CLIP names the file meta_<dataset>.json.
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { UserError } from '../errors.js';
import type { DatasetIndex, Sample, Split } from './types.js';

interface MetaEntry {
  img_path: string;
  mask_path?: string;
  cls_name?: string;
  specie_name?: string;
  anomaly?: number | boolean;
}

/** Finds the meta file: root itself if it is a .json, else root/meta.json, else one root/meta_*.json. */
export async function findMetaFile(root: string): Promise<string | undefined> {
  if (root.endsWith('.json')) return root;
  const names = await readdir(root).catch(() => [] as string[]);
  if (names.includes('meta.json')) return join(root, 'meta.json');
  const candidates = names.filter((n) => /^meta_.+\.json$/.test(n)).sort();
  if (candidates.length > 1) {
    throw new UserError(`${root}: several meta files (${candidates.join(', ')})`, {
      hint: 'pass the one to use as the dataset root',
    });
  }
  return candidates.length === 1 ? join(root, candidates[0]) : undefined;
}

export async function indexMeta(root: string): Promise<DatasetIndex> {
  const file = await findMetaFile(root);
  if (!file) throw new UserError(`${root}: no meta.json or meta_<name>.json found`);
  let parsed: Record<string, Record<string, MetaEntry[]>>;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8')) as typeof parsed;
  } catch (error) {
    throw new UserError(`${file}: cannot read meta file (${(error as Error).message})`);
  }
  const base = dirname(file);
  const resolve = (p: string): string => (isAbsolute(p) ? p : join(base, p));
  const index: DatasetIndex = new Map();
  for (const split of ['train', 'test'] as const satisfies readonly Split[]) {
    const classes = parsed[split] ?? {};
    if (typeof classes !== 'object' || Array.isArray(classes)) {
      throw new UserError(`${file}: "${split}" must map class names to lists of samples`);
    }
    for (const [product, entries] of Object.entries(classes)) {
      if (!Array.isArray(entries))
        throw new UserError(`${file}: ${split}.${product}: expected a list of samples`);
      if (!index.has(product)) index.set(product, { train: [], test: [] });
      const samples: Sample[] = entries.map((entry, i) => {
        if (typeof entry?.img_path !== 'string' || entry.img_path === '') {
          throw new UserError(`${file}: ${split}.${product}[${i}].img_path: expected a path`);
        }
        const anomalous = Number(entry.anomaly ?? 0) === 1;
        return {
          imagePath: resolve(entry.img_path),
          maskPath: entry.mask_path ? resolve(entry.mask_path) : null,
          product,
          defect: anomalous ? entry.specie_name || 'anomaly' : 'good',
          label: anomalous ? 1 : 0,
        };
      });
      index.get(product)![split].push(...samples);
    }
  }
  return index;
}
