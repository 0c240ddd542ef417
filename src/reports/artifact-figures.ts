/**
 * Figures drawn from one run's artifacts of one eval dataset (names: src/tracking/artifact-names.ts,
 * contents: docs/reports.md):
 *   samples/<dataset>/<product>/<name>_{image,mask,overlay}.png  qualitative grid (paper Fig. 5)
 *   attention/<dataset>/<product>/<name>_layer<k>.npy  [H, 2, L]  Post-VCP attention per head (Fig. 6)
 *   text_embeddings/<dataset>/<product>.npy            [N, 2, D]  t-SNE of the text embeddings (Fig. 10)
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeNpy } from '../io/npy.js';
import type { FigureSpec } from '../runner/spec-types.js';
import {
  productKey,
  ARTIFACT_DIRS,
  parseAttentionPath,
  parseSamplePath,
  parseTextEmbeddingsPath,
  SAMPLE_PARTS,
  textEmbeddingsPath,
} from '../tracking/artifact-names.js';
import type { ArtifactStore } from '../tracking/artifacts.js';
import { tsne } from './tsne.js';

type VlSpec = Record<string, unknown>;

/** The run a picture figure draws from, and the eval dataset whose artifacts it uses. */
export interface ArtifactSource {
  store: ArtifactStore;
  runId: string;
  /** The sweep point and seed of the run, for the subtitle. */
  rowLabel: string;
  dataset: string;
}
const PART_TITLES = {
  image: 'image',
  mask: 'ground truth',
  overlay: 'anomaly map overlay',
} as const;
/** Side of each picture in the samples grid (px). */
const THUMB = 160;
/** Attention maps larger than this per side are average-pooled to it. */
const MAX_ATTENTION_SIDE = 24;

/** A figure whose run has none of the artifacts it needs: the report notes it and goes on. */
export class MissingArtifacts extends Error {}

async function withTemp<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'vcp-report-'));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function fetchBytes(
  store: ArtifactStore,
  runId: string,
  path: string,
  dir: string,
): Promise<Buffer> {
  const local = join(dir, path.replaceAll('/', '__'));
  await store.download(runId, path, local);
  return readFile(local);
}

function chooseProducts(found: string[], fig: FigureSpec, limit: number): string[] {
  // Artifacts are named by product key; the spec names products as the dataset does.
  const wanted = fig.products?.map(productKey) ?? found.slice(0, limit);
  return wanted.filter((p) => found.includes(p));
}

/** Image / ground truth / overlay, one row per (product, image). */
export async function samplesFigure(
  fig: FigureSpec,
  { store, runId, rowLabel, dataset }: ArtifactSource,
): Promise<VlSpec> {
  const files = (await store.listFiles(runId, ARTIFACT_DIRS.samples)).map((f) => f.path).sort();
  const entries = new Map<string, Map<string, string>>(); // "<product>/<name>" → part → path
  for (const path of files) {
    const a = parseSamplePath(path);
    if (!a || a.dataset !== dataset) continue;
    const key = `${a.product}/${a.name}`;
    if (!entries.has(key)) entries.set(key, new Map());
    entries.get(key)!.set(a.part, path);
  }
  const products = chooseProducts(
    [...new Set([...entries.keys()].map((k) => k.split('/')[0]))],
    fig,
    4,
  );
  const perProduct = fig.max_items ?? 2;
  const keys = products.flatMap((p) =>
    [...entries.keys()].filter((k) => k.startsWith(`${p}/`)).slice(0, perProduct),
  );
  if (keys.length === 0)
    throw new MissingArtifacts(
      `run ${runId} has no samples/${dataset}/<product>/<name>_{image,mask,overlay}.png artifacts`,
    );
  const values = await withTemp(async (dir) => {
    const out: { sample: string; part: string; url: string }[] = [];
    for (const key of keys) {
      for (const part of SAMPLE_PARTS) {
        const path = entries.get(key)!.get(part);
        if (!path) continue;
        const bytes = await fetchBytes(store, runId, path, dir);
        // A thin grey frame keeps white masks visible on the white page.
        const framed = await sharp(bytes)
          .resize(THUMB - 2, THUMB - 2, { fit: 'contain', background: '#ffffff' })
          .extend({ top: 1, bottom: 1, left: 1, right: 1, background: '#888888' })
          .png()
          .toBuffer();
        const thumb = await sharp(framed).png({ compressionLevel: 9, palette: true }).toBuffer();
        out.push({
          sample: key,
          part: PART_TITLES[part],
          url: `data:image/png;base64,${thumb.toString('base64')}`,
        });
      }
    }
    return out;
  });
  return {
    title: {
      text: fig.title ?? fig.name,
      subtitle: [
        `image, ground-truth mask and anomaly-map overlay (${dataset})`,
        `run ${runId} (${rowLabel})`,
      ],
    },
    width: 3 * (THUMB + 16),
    height: keys.length * (THUMB + 16),
    data: { values },
    mark: { type: 'image', width: THUMB, height: THUMB, aria: false },
    encoding: {
      x: {
        field: 'part',
        type: 'nominal',
        sort: SAMPLE_PARTS.map((p) => PART_TITLES[p]),
        title: null,
        axis: { orient: 'top', labelAngle: 0, ticks: false, domain: false },
      },
      y: {
        field: 'sample',
        type: 'nominal',
        sort: keys,
        title: 'product / image',
        // Sample names carry the defect type: never cut them (Vega's default limit is 180 px).
        axis: { ticks: false, domain: false, labelLimit: 0 },
      },
      url: { field: 'url', type: 'nominal' },
    },
    config: { view: { stroke: null }, axis: { grid: false } },
  };
}

/** Average-pools a side×side map to at most MAX_ATTENTION_SIDE per side. */
function pool(map: Float64Array, side: number): { side: number; values: Float64Array } {
  const f = Math.ceil(side / MAX_ATTENTION_SIDE);
  if (f === 1) return { side, values: map };
  const out = Math.ceil(side / f);
  const values = new Float64Array(out * out);
  const counts = new Float64Array(out * out);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const o = Math.floor(y / f) * out + Math.floor(x / f);
      values[o] += map[y * side + x];
      counts[o] += 1;
    }
  }
  return { side: out, values: values.map((v, i) => v / counts[i]) };
}

/**
 * Post-VCP attention of the normal and abnormal text query over the patch grid, per head, at
 * the deepest layer the run logged (the one whose refined embeddings matter most to the map).
 */
export async function attentionFigure(
  fig: FigureSpec,
  { store, runId, rowLabel, dataset }: ArtifactSource,
): Promise<VlSpec> {
  const found = (await store.listFiles(runId, ARTIFACT_DIRS.attention))
    .map((f) => ({ path: f.path, a: parseAttentionPath(f.path) }))
    .filter((x) => x.a !== null && x.a.dataset === dataset)
    .map((x) => ({ path: x.path, ...x.a! }));
  if (found.length === 0)
    throw new MissingArtifacts(
      `run ${runId} has no attention/${dataset}/<product>/<name>_layer<k>.npy artifacts`,
    );
  const layer = Math.max(...found.map((f) => f.layer));
  const files = found
    .filter((f) => f.layer === layer)
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const products = chooseProducts([...new Set(files.map((f) => f.product))], fig, 4);
  const chosen = products.flatMap((p) =>
    files.filter((f) => f.product === p).slice(0, fig.max_items ?? 1),
  );
  if (chosen.length === 0)
    throw new MissingArtifacts(
      `run ${runId} has no attention artifacts of products ${(fig.products ?? []).join(', ')} in ${dataset}`,
    );
  let pooledNote = '';
  const panels = await withTemp(async (dir) => {
    const out: VlSpec[] = [];
    for (const { path, product, name } of chosen) {
      const npy = decodeNpy(await fetchBytes(store, runId, path, dir), path);
      if (npy.shape.length !== 3 || npy.shape[1] !== 2)
        throw new Error(`${path}: expected shape [H, 2, L], got [${npy.shape.join(', ')}]`);
      const [heads, , l] = npy.shape;
      const side = Math.round(Math.sqrt(l));
      if (side * side !== l) throw new Error(`${path}: L = ${l} patches is not a square grid`);
      const values: { head: string; state: string; col: number; row: number; weight: number }[] =
        [];
      for (let h = 0; h < heads; h++) {
        for (let s = 0; s < 2; s++) {
          // ×L: 1 is uniform attention, whatever the grid size.
          const map = Float64Array.from(
            { length: l },
            (_, i) => Number(npy.data[(h * 2 + s) * l + i]) * l,
          );
          const pooled = pool(map, side);
          if (pooled.side !== side)
            pooledNote = `; maps average-pooled from ${side}×${side} to ${pooled.side}×${pooled.side}`;
          pooled.values.forEach((w, i) =>
            values.push({
              head: `head ${h + 1}`,
              state: s === 0 ? 'normal prompt' : 'abnormal prompt',
              col: i % pooled.side,
              row: Math.floor(i / pooled.side),
              weight: w,
            }),
          );
        }
      }
      out.push({
        title: `${product} / ${name}`,
        data: { values },
        facet: {
          row: {
            field: 'head',
            type: 'ordinal',
            title: null,
            sort: Array.from({ length: heads }, (_, h) => `head ${h + 1}`),
          },
          column: {
            field: 'state',
            type: 'nominal',
            title: null,
            sort: ['normal prompt', 'abnormal prompt'],
          },
        },
        spec: {
          width: 110,
          height: 110,
          mark: { type: 'rect', aria: false },
          encoding: {
            x: { field: 'col', type: 'ordinal', axis: null },
            y: { field: 'row', type: 'ordinal', axis: null },
            color: {
              field: 'weight',
              type: 'quantitative',
              title: ['attention × L', '(1 = uniform)'],
              scale: { scheme: 'viridis' },
            },
          },
        },
      });
    }
    return out;
  });
  return {
    title: {
      text: fig.title ?? fig.name,
      subtitle: [
        `Post-VCP attention of each text query over the patch grid, layer ${layer} (${dataset})${pooledNote}`,
        `run ${runId} (${rowLabel})`,
      ],
    },
    hconcat: panels,
    resolve: { scale: { color: 'shared' } },
  };
}

/** t-SNE of the per-image normal / abnormal text embeddings, coloured by product. */
export async function tsneFigure(
  fig: FigureSpec,
  { store, runId, rowLabel, dataset }: ArtifactSource,
): Promise<VlSpec> {
  const found = (await store.listFiles(runId, ARTIFACT_DIRS.textEmbeddings))
    .map((f) => parseTextEmbeddingsPath(f.path))
    .filter((a) => a !== null && a.dataset === dataset);
  const products = chooseProducts(found.map((a) => a!.product).sort(), fig, Infinity);
  if (products.length === 0)
    throw new MissingArtifacts(
      `run ${runId} has no text_embeddings/${dataset}/<product>.npy artifacts`,
    );
  const budget = fig.max_items ?? 400;
  const perProduct = Math.max(1, Math.floor(budget / (2 * products.length)));
  const rows: number[][] = [];
  const meta: { product: string; state: string }[] = [];
  await withTemp(async (dir) => {
    for (const product of products) {
      const path = textEmbeddingsPath(dataset, product);
      const npy = decodeNpy(await fetchBytes(store, runId, path, dir), path);
      if (npy.shape.length !== 3 || npy.shape[1] !== 2)
        throw new Error(`${path}: expected shape [N, 2, D], got [${npy.shape.join(', ')}]`);
      const [n, , d] = npy.shape;
      const take = Math.min(n, perProduct);
      for (let k = 0; k < take; k++) {
        const i = Math.floor((k * n) / take); // evenly spaced images: deterministic
        for (let s = 0; s < 2; s++) {
          rows.push(Array.from({ length: d }, (_, j) => Number(npy.data[(i * 2 + s) * d + j])));
          meta.push({ product, state: s === 0 ? 'normal' : 'abnormal' });
        }
      }
    }
  });
  const distinct = new Set(rows.map((r) => r.join(','))).size;
  // Without Pre-VCP the prompts do not see the image: every image has the same two embeddings.
  if (distinct <= 2)
    throw new MissingArtifacts(
      `the ${rows.length} text embeddings of run ${runId} are ${distinct} distinct vectors (the same for every image, as without Pre-VCP): nothing for a t-SNE to show`,
    );
  const d = rows[0].length;
  const y = tsne(Float64Array.from(rows.flat()), rows.length, d, { seed: 0 });
  const values = meta.map((m, i) => ({
    ...m,
    x: Number(y[2 * i].toFixed(4)),
    y: Number(y[2 * i + 1].toFixed(4)),
  }));
  return {
    title: {
      text: fig.title ?? fig.name,
      subtitle: [
        `${rows.length} text embeddings of ${dataset} (normal and abnormal prompt per image); exact t-SNE, perplexity 30, seed 0`,
        `run ${runId} (${rowLabel})`,
      ],
    },
    width: 420,
    height: 360,
    data: { values },
    mark: { type: 'point', filled: true, size: 45, opacity: 0.8 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: 't-SNE dimension 1 (arbitrary units)' },
      y: { field: 'y', type: 'quantitative', title: 't-SNE dimension 2 (arbitrary units)' },
      color: {
        field: 'product',
        type: 'nominal',
        title: 'product',
        scale: { scheme: products.length > 10 ? 'category20' : 'tableau10' },
      },
      shape: {
        field: 'state',
        type: 'nominal',
        title: 'prompt',
        scale: { domain: ['normal', 'abnormal'], range: ['circle', 'triangle-up'] },
      },
    },
  };
}
