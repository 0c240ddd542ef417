/**
 * MVTec-AD layout: <root>/<product>/train/good/*, <root>/<product>/test/<defect>/*,
 * <root>/<product>/ground_truth/<defect>/<stem>_mask.png (BTech-style <stem>.png also found).
 */
import { join } from 'node:path';
import { listDirs, listImages, stem } from './fs-utils.js';
import type { DatasetIndex, Sample } from './types.js';

async function maskFinder(dir: string): Promise<(imageName: string) => string | null> {
  const byStem = new Map((await listImages(dir)).map((name) => [stem(name), name]));
  return (imageName) => {
    const s = stem(imageName);
    const name = byStem.get(`${s}_mask`) ?? byStem.get(s);
    return name === undefined ? null : join(dir, name);
  };
}

export async function indexMvtec(root: string): Promise<DatasetIndex> {
  const index: DatasetIndex = new Map();
  for (const product of await listDirs(root)) {
    const base = join(root, product);
    const splits = await listDirs(base);
    if (!splits.includes('train') && !splits.includes('test')) continue;
    const train: Sample[] = [];
    for (const defect of await listDirs(join(base, 'train'))) {
      for (const name of await listImages(join(base, 'train', defect))) {
        const good = defect === 'good';
        train.push({
          imagePath: join(base, 'train', defect, name),
          maskPath: null,
          product,
          defect,
          label: good ? 0 : 1,
        });
      }
    }
    const test: Sample[] = [];
    for (const defect of await listDirs(join(base, 'test'))) {
      const good = defect === 'good';
      const findMask = good ? () => null : await maskFinder(join(base, 'ground_truth', defect));
      for (const name of await listImages(join(base, 'test', defect))) {
        test.push({
          imagePath: join(base, 'test', defect, name),
          maskPath: findMask(name),
          product,
          defect,
          label: good ? 0 : 1,
        });
      }
    }
    index.set(product, { train, test });
  }
  return index;
}
