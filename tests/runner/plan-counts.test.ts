/**
 * `vcp-exp plan` counts the images a trial reads with the adapters the trials use, for every
 * dataset format: the test split of eval datasets, the train dataset's own split (MVTec's
 * train/good images are not part of a zero-shot training on its test split). Expected counts
 * are stated by hand from the fixture trees (tests/fixtures/datasets/layouts, the real public
 * layouts), not computed by the code under test.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { planSpec } from '../../src/runner/plan.js';
import { loadSpec } from '../../src/runner/spec.js';

const LAYOUTS = resolve('tests/fixtures/datasets/layouts');
const work = mkdtempSync(join(tmpdir(), 'vcp-plan-counts-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A folder-layout tree: two products, images/ and masks/ (a mask = anomalous). */
function folderTree(): string {
  const root = join(work, 'folder');
  const png = join(LAYOUTS, 'mvtec/bottle/test/good/000.png');
  const mask = join(LAYOUTS, 'mvtec/bottle/ground_truth/contamination/000_mask.png');
  for (const [product, images, masks] of [
    ['a', 3, 1],
    ['b', 2, 2],
  ] as const) {
    mkdirSync(join(root, product, 'images'), { recursive: true });
    mkdirSync(join(root, product, 'masks'), { recursive: true });
    for (let i = 0; i < images; i++) copyFileSync(png, join(root, product, 'images', `${i}.png`));
    for (let i = 0; i < masks; i++) copyFileSync(mask, join(root, product, 'masks', `${i}.png`));
  }
  return root;
}

/** test images, anomalous among them, train-split images; by hand from the trees. */
const CASES = [
  // bottle: test/good 1, broken_large 2, contamination 1; screw: good 1, thread_top 1.
  { format: 'mvtec', root: join(LAYOUTS, 'mvtec'), test: 6, anomalous: 4, train: 3 },
  // split_csv/1cls.csv: candle test 3 (2 anomaly), pcb1 test 2 (1 anomaly); train 2 + 1.
  { format: 'visa', root: join(LAYOUTS, 'visa'), test: 5, anomalous: 3, train: 3 },
  // meta_mvtec.json: test bottle 4, screw 2 (the same images as mvtec); train 2 + 1.
  {
    format: 'meta',
    root: join(LAYOUTS, 'vcp-mvisa/meta_mvtec.json'),
    test: 6,
    anomalous: 4,
    train: 3,
  },
  // a: 3 images, 1 mask; b: 2 images, 2 masks (folder: no split, both list everything).
  { format: 'folder', root: folderTree(), test: 5, anomalous: 3, train: 5 },
] as const;

function spec(format: string, root: string, split: 'test' | 'train'): string {
  const file = join(work, `${format}-${split}.yaml`);
  writeFileSync(
    file,
    `name: counts-${format}
base: { backbone: tiny-clip, image_size: 32, layers: [1, 2, 3], pre_vcp: false }
train:
  dataset: { format: ${format}, root: ${JSON.stringify(root)}, split: ${split} }
  epochs: 2
eval:
  datasets: [{ name: ev, format: ${format}, root: ${JSON.stringify(root)} }]
`,
  );
  return file;
}

for (const c of CASES) {
  test(`plan counts ${c.format}: ${c.test} test images (${c.anomalous} anomalous), ${c.train} in the train split`, async () => {
    const plan = await planSpec(await loadSpec(spec(c.format, c.root, 'test')));
    const train = plan.datasets.find((d) => d.labels.includes('train dataset'))!;
    const evalSet = plan.datasets.find((d) => d.labels.includes('eval dataset ev'))!;
    assert.equal(train.images, c.test, 'training on the test split reads the test images');
    assert.equal(evalSet.images, c.test);
    assert.equal(evalSet.anomalous, c.anomalous);
    assert.equal(plan.work.trainImagePasses, 2 * c.test, 'images × 2 epochs');
    assert.equal(plan.work.evalImagePasses, c.test);
    const onTrainSplit = await planSpec(await loadSpec(spec(c.format, c.root, 'train')));
    assert.equal(
      onTrainSplit.datasets.find((d) => d.labels.includes('train dataset'))!.images,
      c.train,
    );
  });
}

test('vcp-exp plan prints the counts per dataset and names a root that is not here', () => {
  const file = join(work, 'missing.yaml');
  writeFileSync(
    file,
    `name: counts-missing
base: { backbone: tiny-clip, image_size: 32, layers: [1, 2, 3], pre_vcp: false }
train: { dataset: { format: mvtec, root: ${JSON.stringify(join(LAYOUTS, 'mvtec'))} } }
eval: { datasets: [{ name: elsewhere, format: meta, root: /nonexistent/meta.json }] }
`,
  );
  const r = spawnSync(process.execPath, ['bin/vcp-exp.js', 'plan', file], {
    encoding: 'utf8',
    env: { ...process.env, MLFLOW_TRACKING_URI: '', VCP_EXP_STATE_DIR: join(work, 'state') },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /train dataset: .*mvtec \(test split\): 6 images \(4 anomalous\), 2 products/,
  );
  assert.match(
    r.stdout,
    /eval dataset elsewhere: \/nonexistent\/meta\.json \(test split\): \? images \(does not exist here\)/,
  );
  assert.match(
    r.stdout,
    /missing here[^]*eval dataset elsewhere \(meta\): \/nonexistent\/meta\.json does not exist/,
  );
  assert.match(r.stdout, /time: unknown until what is missing/);
});
