/**
 * Plain folder layout: <root>/<product>/images/* and <root>/<product>/masks/*, matched by
 * file stem (a mask may also be named <stem>_mask.*); an image without a mask is good.
 * There is no split: train and test both list every image.
 */
import { join } from 'node:path';
import { listDirs, listImages, stem } from './fs-utils.js';
import type { DatasetIndex, Sample } from './types.js';

export async function indexFolder(root: string): Promise<DatasetIndex> {
  const index: DatasetIndex = new Map();
  for (const product of await listDirs(root)) {
    const images = await listImages(join(root, product, 'images'));
    if (images.length === 0 && !(await listDirs(join(root, product))).includes('images')) continue;
    const masks = new Map<string, string>();
    for (const name of await listImages(join(root, product, 'masks'))) {
      const s = stem(name);
      masks.set(s.endsWith('_mask') ? s.slice(0, -5) : s, join(root, product, 'masks', name));
    }
    const samples: Sample[] = images.map((name) => {
      const maskPath = masks.get(stem(name)) ?? null;
      return {
        imagePath: join(root, product, 'images', name),
        maskPath,
        product,
        defect: maskPath ? 'anomaly' : 'good',
        label: maskPath ? 1 : 0,
      };
    });
    index.set(product, { train: samples, test: samples });
  }
  return index;
}
