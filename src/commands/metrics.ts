import { UserError } from '../errors.js';
import {
  evaluateProduct,
  meanOverProducts,
  METRICS,
  type MetricName,
  type ProductMetrics,
  type ProVariant,
} from '../eval/evaluate.js';
import { mapMaximum } from '../eval/image.js';
import { pairMapsAndMasks, readMap, readMask, type ProductFiles } from '../eval/map-files.js';
import { PixelAccumulator } from '../eval/pixels.js';

export interface MetricsCommandOptions {
  json?: boolean;
  pro?: string;
}

const PRO_VARIANTS = ['paper', 'exact'] as const satisfies readonly ProVariant[];

const HEADERS: Record<MetricName, string> = {
  pixelAuroc: 'px-AUROC',
  pro: 'PRO',
  pixelAp: 'px-AP',
  pixelF1Max: 'px-F1max',
  iou: 'IoU',
  imageAuroc: 'img-AUROC',
  imageAp: 'img-AP',
  imageF1Max: 'img-F1max',
};

/** Streams one product's maps and masks through the accumulator and evaluates it. */
async function evaluateFiles(files: ProductFiles, pro: ProVariant): Promise<ProductMetrics> {
  const pixels = new PixelAccumulator();
  const imageScores: number[] = [];
  const imageLabels: number[] = [];
  for (const entry of files.images) {
    const map = await readMap(entry.mapFile);
    const mask = entry.maskFile
      ? await readMask(entry.maskFile)
      : { data: new Uint8Array(map.data.length), height: map.height, width: map.width };
    if (mask.height !== map.height || mask.width !== map.width) {
      throw new UserError(
        `${entry.maskFile}: mask is ${mask.height}×${mask.width} but map ${entry.mapFile} is ${map.height}×${map.width}`,
        {
          hint: 'resize the maps to the mask resolution (or the masks, nearest-neighbour) before evaluating',
        },
      );
    }
    try {
      pixels.add(map.data, mask.data, map.height, map.width, entry.mapFile);
    } catch (error) {
      throw new UserError((error as Error).message);
    }
    imageScores.push(mapMaximum(map.data));
    imageLabels.push(mask.data.some((v) => v !== 0) ? 1 : 0);
  }
  return evaluateProduct(
    { product: files.product, pixels: pixels.finish(), imageScores, imageLabels },
    { pro },
  );
}

function percent(value: number | null): string {
  return value === null ? '—' : (100 * value).toFixed(2);
}

export function table(
  products: readonly ProductMetrics[],
  mean: Record<MetricName, number | null>,
): string {
  const header = ['product', 'images', ...METRICS.map((m) => HEADERS[m])];
  const rows = products.map((p) => [
    p.product,
    `${p.images}`,
    ...METRICS.map((m) => percent(p[m])),
  ]);
  rows.push([
    'mean',
    `${products.reduce((n, p) => n + p.images, 0)}`,
    ...METRICS.map((m) => percent(mean[m])),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
      .join('  ');
  return [
    line(header),
    ...rows.slice(0, -1).map(line),
    widths.map((w) => '-'.repeat(w)).join('  '),
    line(rows[rows.length - 1]),
  ].join('\n');
}

/**
 * `vcp-exp metrics <maps-dir> <masks-dir>`: every paper metric per product (first directory
 * level) and their mean, for maps produced by any method. Percentages in the table; fractions
 * in --json. Image score = the map maximum (the paper's appendix B.4).
 */
export async function metricsCommand(
  mapsDir: string,
  masksDir: string,
  options: MetricsCommandOptions,
): Promise<void> {
  const pro = (options.pro ?? 'paper') as ProVariant;
  if (!PRO_VARIANTS.includes(pro))
    throw new UserError(`--pro: got "${options.pro}", expected one of ${PRO_VARIANTS.join(', ')}`);
  const { products: files, unmatchedMasks } = await pairMapsAndMasks(mapsDir, masksDir);
  for (const mask of unmatchedMasks) console.error(`warning: mask ${mask} matches no map; ignored`);
  const products: ProductMetrics[] = [];
  for (const product of files) products.push(await evaluateFiles(product, pro));
  const mean = meanOverProducts(products);
  if (options.json) {
    console.log(
      JSON.stringify(
        { mapsDir, masksDir, pro, imageScore: 'map maximum', products, ...mean },
        null,
        2,
      ),
    );
    return;
  }
  console.log(`metrics (%), PRO variant: ${pro}, image score: map maximum`);
  console.log(table(products, mean.mean));
  for (const name of METRICS) {
    if (mean.skipped[name] > 0)
      console.log(
        `${HEADERS[name]}: mean over ${mean.counted[name]} products; skipped ${mean.skipped[name]} where it is undefined`,
      );
  }
  for (const p of products) {
    for (const [name, reason] of Object.entries(p.reasons))
      console.log(`  ${p.product} ${HEADERS[name as MetricName]}: ${reason}`);
    for (const note of p.notes) console.log(`  ${p.product} ${note}`);
  }
}
