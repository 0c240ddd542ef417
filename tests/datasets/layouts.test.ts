/**
 * The adapters and the dataset check on small trees in the real public layouts
 * (tests/fixtures/datasets/layouts, written by python/golden/make_dataset_layouts.py): MVTec-AD
 * and VisA as downloaded, the unified tree and meta_*.json the public VCP-CLIP code makes of
 * them, and the meta.json the public ViP²-CLIP code writes. Every expected sample list, label
 * and mask area below is stated by hand from that script's REGIONS table, not computed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, test } from 'node:test';
import { checkDataset } from '../../src/datasets/check.js';
import { loadMaskData, readImageRgb } from '../../src/datasets/image-io.js';
import { detectFormat, openDataset } from '../../src/datasets/open.js';
import type { Dataset, Sample, Split } from '../../src/datasets/types.js';
import { UserError } from '../../src/errors.js';

const LAYOUTS = 'tests/fixtures/datasets/layouts';
const MVTEC = join(LAYOUTS, 'mvtec');
const VISA = join(LAYOUTS, 'visa');
const VCP = join(LAYOUTS, 'vcp-mvisa');
const SIZE = 16;

const work = mkdtempSync(join(tmpdir(), 'vcp-layouts-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** [image, mask or null, label, defect], image and mask relative to `root`. */
type Row = [string, string | null, 0 | 1, string];

function rows(dataset: Dataset, product: string, split: Split, root: string): Row[] {
  return dataset
    .samples(product, split)
    .map((s: Sample) => [
      relative(root, s.imagePath),
      s.maskPath === null ? null : relative(root, s.maskPath),
      s.label,
      s.defect,
    ]);
}

/** Anomalous pixels of each mask after loading at its native size (the REGIONS rectangles). */
async function maskAreas(dataset: Dataset, product: string): Promise<number[]> {
  const areas: number[] = [];
  for (const s of dataset.samples(product, 'test')) {
    if (s.maskPath === null) continue;
    areas.push((await loadMaskData(s.maskPath, SIZE)).reduce((a, v) => a + v, 0));
  }
  return areas;
}

const MVTEC_ROWS: Record<string, Record<Split, Row[]>> = {
  bottle: {
    train: [
      ['bottle/train/good/000.png', null, 0, 'good'],
      ['bottle/train/good/001.png', null, 0, 'good'],
    ],
    test: [
      [
        'bottle/test/broken_large/000.png',
        'bottle/ground_truth/broken_large/000_mask.png',
        1,
        'broken_large',
      ],
      [
        'bottle/test/broken_large/001.png',
        'bottle/ground_truth/broken_large/001_mask.png',
        1,
        'broken_large',
      ],
      [
        'bottle/test/contamination/000.png',
        'bottle/ground_truth/contamination/000_mask.png',
        1,
        'contamination',
      ],
      ['bottle/test/good/000.png', null, 0, 'good'],
    ],
  },
  screw: {
    train: [['screw/train/good/000.png', null, 0, 'good']],
    test: [
      ['screw/test/good/000.png', null, 0, 'good'],
      [
        'screw/test/thread_top/000.png',
        'screw/ground_truth/thread_top/000_mask.png',
        1,
        'thread_top',
      ],
    ],
  },
};

const VISA_ROWS: Record<string, Record<Split, Row[]>> = {
  candle: {
    train: [
      ['candle/Data/Images/Normal/0000.JPG', null, 0, 'good'],
      ['candle/Data/Images/Normal/0001.JPG', null, 0, 'good'],
    ],
    test: [
      ['candle/Data/Images/Anomaly/000.JPG', 'candle/Data/Masks/Anomaly/000.png', 1, 'anomaly'],
      ['candle/Data/Images/Anomaly/001.JPG', 'candle/Data/Masks/Anomaly/001.png', 1, 'anomaly'],
      ['candle/Data/Images/Normal/0002.JPG', null, 0, 'good'],
    ],
  },
  pcb1: {
    train: [['pcb1/Data/Images/Normal/0000.JPG', null, 0, 'good']],
    test: [
      ['pcb1/Data/Images/Anomaly/000.JPG', 'pcb1/Data/Masks/Anomaly/000.png', 1, 'anomaly'],
      ['pcb1/Data/Images/Normal/0001.JPG', null, 0, 'good'],
    ],
  },
};

/** Mask areas per product in test order: 4×6, 4×3, 2×3; 2×14; 5×3, 4×4; 3×3. */
const AREAS = { bottle: [24, 12, 6], screw: [28], candle: [15, 16], pcb1: [9] };

function assertRows(
  dataset: Dataset,
  root: string,
  expected: Record<string, Record<Split, Row[]>>,
): void {
  assert.deepEqual(dataset.products(), Object.keys(expected));
  for (const [product, splits] of Object.entries(expected))
    for (const split of ['train', 'test'] as const)
      assert.deepEqual(rows(dataset, product, split, root), splits[split], `${product} ${split}`);
}

test('MVTec-AD as downloaded: license/readme files ignored, <stem>_mask.png paired, gray products read as RGB', async () => {
  assert.equal(await detectFormat(MVTEC), 'mvtec');
  const ds = await openDataset({ root: MVTEC });
  assertRows(ds, MVTEC, MVTEC_ROWS);
  assert.deepEqual(await maskAreas(ds, 'bottle'), AREAS.bottle);
  assert.deepEqual(await maskAreas(ds, 'screw'), AREAS.screw);
  const screw = await readImageRgb(join(MVTEC, 'screw/train/good/000.png'));
  assert.deepEqual([screw.width, screw.height], [SIZE, SIZE]);
  for (let p = 0; p < screw.data.length; p += 3)
    assert.ok(screw.data[p] === screw.data[p + 1] && screw.data[p] === screw.data[p + 2]);
});

test('VisA as downloaded: split_csv/1cls.csv decides splits and labels; 0/1 masks count as anomalous', async () => {
  assert.equal(await detectFormat(VISA), 'visa');
  const ds = await openDataset({ root: VISA });
  assertRows(ds, VISA, VISA_ROWS);
  assert.deepEqual(await maskAreas(ds, 'candle'), AREAS.candle);
  assert.deepEqual(await maskAreas(ds, 'pcb1'), AREAS.pcb1);
  const raw = await readImageRgb(join(VISA, 'candle/Data/Masks/Anomaly/000.png'));
  assert.deepEqual(new Set(raw.data), new Set([0, 1]), 'the fixture masks really are 0/1');
});

test("VCP-CLIP's unified tree and meta_<dataset>.json: two meta files need the JSON as root; samples, masks and pixels match the originals", async () => {
  await assert.rejects(
    openDataset({ root: VCP }),
    (e: unknown) =>
      e instanceof UserError &&
      /several meta files \(meta_mvtec\.json, meta_visa\.json\)/.test(e.message) &&
      /pass the one to use/.test(e.hint ?? ''),
  );
  const mvtec = await openDataset({ root: join(VCP, 'meta_mvtec.json') });
  assert.equal(mvtec.format, 'meta');
  assert.deepEqual(mvtec.products(), ['bottle', 'screw']);
  assert.deepEqual(rows(mvtec, 'bottle', 'test', VCP), [
    [
      'mvtec/bottle/test/anomaly/mvtec_broken_large_000002.bmp',
      'mvtec/bottle/ground_truth/anomaly/mvtec_broken_large_000002.png',
      1,
      'anomaly',
    ],
    [
      'mvtec/bottle/test/anomaly/mvtec_broken_large_000003.bmp',
      'mvtec/bottle/ground_truth/anomaly/mvtec_broken_large_000003.png',
      1,
      'anomaly',
    ],
    [
      'mvtec/bottle/test/anomaly/mvtec_contamination_000004.bmp',
      'mvtec/bottle/ground_truth/anomaly/mvtec_contamination_000004.png',
      1,
      'anomaly',
    ],
    ['mvtec/bottle/test/good/mvtec_good_000005.bmp', null, 0, 'good'],
  ]);
  assert.deepEqual(rows(mvtec, 'screw', 'train', VCP), [
    ['mvtec/screw/train/good/mvtec_000006.bmp', null, 0, 'good'],
  ]);
  assert.deepEqual(await maskAreas(mvtec, 'bottle'), AREAS.bottle);
  assert.deepEqual(await maskAreas(mvtec, 'screw'), AREAS.screw);
  // make_VAND re-encodes the PNGs as 24-bit BMPs (gray screws as BGR): same pixels.
  for (const [bmp, png] of [
    ['mvtec/bottle/test/anomaly/mvtec_broken_large_000002.bmp', 'bottle/test/broken_large/000.png'],
    ['mvtec/screw/train/good/mvtec_000006.bmp', 'screw/train/good/000.png'],
  ])
    assert.deepEqual(
      (await readImageRgb(join(VCP, bmp))).data,
      (await readImageRgb(join(MVTEC, png))).data,
      bmp,
    );

  const visa = await openDataset({ root: join(VCP, 'meta_visa.json') });
  assert.deepEqual(
    visa
      .products()
      .map((p) => [p, visa.samples(p, 'train').length, visa.samples(p, 'test').length]),
    [
      ['candle', 2, 3],
      ['pcb1', 1, 2],
    ],
  );
  assert.deepEqual(await maskAreas(visa, 'candle'), AREAS.candle);
  assert.deepEqual(await maskAreas(visa, 'pcb1'), AREAS.pcb1);
});

test("ViP²-CLIP's meta.json in the dataset root: the same samples as the MVTec and VisA adapters", async () => {
  const mvtecCopy = join(work, 'mvtec');
  cpSync(MVTEC, mvtecCopy, { recursive: true });
  copyFileSync(join(LAYOUTS, 'vip2-meta/mvtec.json'), join(mvtecCopy, 'meta.json'));
  assert.equal(await detectFormat(mvtecCopy), 'meta');
  assertRows(await openDataset({ root: mvtecCopy }), mvtecCopy, MVTEC_ROWS);

  const visaCopy = join(work, 'visa');
  cpSync(VISA, visaCopy, { recursive: true });
  copyFileSync(join(LAYOUTS, 'vip2-meta/visa.json'), join(visaCopy, 'meta.json'));
  assert.equal(await detectFormat(visaCopy), 'visa', 'split_csv/1cls.csv wins over meta.json');
  const meta = await openDataset({ root: join(visaCopy, 'meta.json') });
  assert.equal(meta.format, 'meta');
  assertRows(meta, visaCopy, VISA_ROWS);
});

test('data check on every real layout: no problems, per-product counts', async () => {
  const counts = async (root: string) => {
    const { counts, problems } = await checkDataset({ root });
    assert.deepEqual(problems, [], root);
    return counts.map((c) => [
      c.product,
      c.train.good,
      c.train.anomalous,
      c.test.good,
      c.test.anomalous,
    ]);
  };
  const mvtec = [
    ['bottle', 2, 0, 1, 3],
    ['screw', 1, 0, 1, 1],
  ];
  const visa = [
    ['candle', 2, 0, 1, 2],
    ['pcb1', 1, 0, 1, 1],
  ];
  assert.deepEqual(await counts(MVTEC), mvtec);
  assert.deepEqual(await counts(VISA), visa);
  assert.deepEqual(await counts(join(VCP, 'meta_mvtec.json')), mvtec);
  assert.deepEqual(await counts(join(VCP, 'meta_visa.json')), visa);

  const cli = new URL('../../bin/vcp-exp.js', import.meta.url).pathname;
  const ok = spawnSync(process.execPath, [cli, 'data', 'check', MVTEC], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^bottle\s+2\s+0\s+1\s+3$/m);
  assert.match(ok.stdout, /ok: 2 products, no problems/);
});

test('data check on a damaged VisA copy: the missing mask and the truncated JPEG, both named', async () => {
  const root = join(work, 'visa-broken');
  cpSync(VISA, root, { recursive: true });
  const mask = join(root, 'candle/Data/Masks/Anomaly/001.png');
  rmSync(mask);
  const image = join(root, 'pcb1/Data/Images/Normal/0001.JPG');
  writeFileSync(image, readFileSync(image).subarray(0, 120));
  const { problems } = await checkDataset({ root });
  assert.deepEqual(
    problems.map((p) => [p.path, p.problem.split(':')[0]]),
    [
      [mask, 'unreadable mask'],
      [image, 'unreadable image'],
    ],
  );
});
