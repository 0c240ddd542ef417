import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { detectFormat, openDataset } from '../../src/datasets/open.js';
import { generateSynthDataset } from '../../src/datasets/synth.js';
import { UserError } from '../../src/errors.js';

let synth: string;
before(async () => {
  synth = mkdtempSync(join(tmpdir(), 'vcp-adapters-'));
  await generateSynthDataset(synth, {
    products: ['wood', 'pill'],
    size: 48,
    trainGood: 2,
    testGood: 2,
    testDefect: 1,
    seed: 5,
  });
});

test('MVTec adapter on a generated tree: products, splits, labels, masks', async () => {
  assert.equal(await detectFormat(synth), 'mvtec');
  const ds = await openDataset({ root: synth });
  assert.equal(ds.format, 'mvtec');
  assert.deepEqual(ds.products(), ['pill', 'wood']);
  const train = ds.samples('wood', 'train');
  assert.equal(train.length, 2);
  assert.ok(train.every((s) => s.label === 0 && s.defect === 'good' && s.maskPath === null));
  const test = ds.samples('pill', 'test');
  assert.equal(test.length, 2 + 5);
  const scratch = test.find((s) => s.defect === 'scratch')!;
  assert.equal(scratch.label, 1);
  assert.equal(scratch.imagePath, join(synth, 'pill', 'test', 'scratch', '000.png'));
  assert.equal(scratch.maskPath, join(synth, 'pill', 'ground_truth', 'scratch', '000_mask.png'));
  assert.ok(
    test.filter((s) => s.defect === 'good').every((s) => s.maskPath === null && s.label === 0),
  );
  assert.deepEqual((await openDataset({ root: synth, products: ['wood'] })).products(), ['wood']);
});

test('product filter: an unknown product lists the available ones', async () => {
  await assert.rejects(
    openDataset({ root: synth, products: ['wood', 'toaster'] }),
    (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /"toaster"/);
      assert.match(e.hint ?? '', /pill, wood/);
      return true;
    },
  );
});

test('VisA adapter: split_csv/1cls.csv, paths relative to root', async () => {
  const root = mkdtempSync(join(tmpdir(), 'vcp-visa-'));
  for (const dir of [
    'candle/Data/Images/Normal',
    'candle/Data/Images/Anomaly',
    'candle/Data/Masks/Anomaly',
    'split_csv',
  ])
    mkdirSync(join(root, dir), { recursive: true });
  cpSync(
    join(synth, 'wood', 'train', 'good', '000.png'),
    join(root, 'candle/Data/Images/Normal/0000.JPG'),
  );
  cpSync(
    join(synth, 'wood', 'test', 'hole', '000.png'),
    join(root, 'candle/Data/Images/Anomaly/000.JPG'),
  );
  cpSync(
    join(synth, 'wood', 'ground_truth', 'hole', '000_mask.png'),
    join(root, 'candle/Data/Masks/Anomaly/000.png'),
  );
  writeFileSync(
    join(root, 'split_csv', '1cls.csv'),
    'object,split,label,image,mask\n' +
      'candle,train,normal,candle/Data/Images/Normal/0000.JPG,\n' +
      'candle,test,anomaly,candle/Data/Images/Anomaly/000.JPG,candle/Data/Masks/Anomaly/000.png\n' +
      'capsules,test,normal,"capsules/Data/Images/Normal/0,1.JPG",\n',
  );
  assert.equal(await detectFormat(root), 'visa');
  const ds = await openDataset({ root });
  assert.deepEqual(ds.products(), ['candle', 'capsules']);
  assert.deepEqual(ds.samples('candle', 'train'), [
    {
      imagePath: join(root, 'candle/Data/Images/Normal/0000.JPG'),
      maskPath: null,
      product: 'candle',
      defect: 'good',
      label: 0,
    },
  ]);
  assert.deepEqual(ds.samples('candle', 'test'), [
    {
      imagePath: join(root, 'candle/Data/Images/Anomaly/000.JPG'),
      maskPath: join(root, 'candle/Data/Masks/Anomaly/000.png'),
      product: 'candle',
      defect: 'anomaly',
      label: 1,
    },
  ]);
  assert.equal(
    ds.samples('capsules', 'test')[0].imagePath,
    join(root, 'capsules/Data/Images/Normal/0,1.JPG'),
  );
  writeFileSync(
    join(root, 'split_csv', '1cls.csv'),
    'object,split,label,image\ncandle,val,normal,a.png\n',
  );
  await assert.rejects(openDataset({ root }), /missing column "mask"/);
});

test('meta.json adapter (VCP-CLIP / APRIL-GAN format), also named meta_<dataset>.json', async () => {
  const meta = {
    train: {},
    test: {
      wood: [
        {
          img_path: 'wood/test/good/000.png',
          mask_path: '',
          cls_name: 'wood',
          specie_name: 'good',
          anomaly: 0,
        },
        {
          img_path: 'wood/test/crack/000.png',
          mask_path: 'wood/ground_truth/crack/000_mask.png',
          cls_name: 'wood',
          specie_name: 'crack',
          anomaly: 1,
        },
      ],
    },
  };
  writeFileSync(join(synth, 'meta_synth.json'), JSON.stringify(meta));
  assert.equal(await detectFormat(synth), 'meta');
  const ds = await openDataset({ root: synth });
  assert.equal(ds.format, 'meta');
  assert.deepEqual(ds.products(), ['wood']);
  assert.deepEqual(ds.samples('wood', 'train'), []);
  assert.deepEqual(
    ds.samples('wood', 'test').map((s) => [s.defect, s.label, s.maskPath]),
    [
      ['crack', 1, join(synth, 'wood/ground_truth/crack/000_mask.png')],
      ['good', 0, null],
    ],
  );
  // The JSON file itself can be the root; the MVTec reading is still reachable with --format.
  assert.equal((await openDataset({ root: join(synth, 'meta_synth.json') })).format, 'meta');
  assert.equal((await openDataset({ root: synth, format: 'mvtec' })).products().length, 2);
  writeFileSync(
    join(synth, 'meta_synth.json'),
    JSON.stringify({ test: { wood: [{ mask_path: '' }] } }),
  );
  await assert.rejects(openDataset({ root: synth }), /test\.wood\[0\]\.img_path/);
});

test('folder adapter: images/ and masks/ matched by stem; no mask means good', async () => {
  const root = mkdtempSync(join(tmpdir(), 'vcp-folder-'));
  mkdirSync(join(root, 'tiles', 'images'), { recursive: true });
  mkdirSync(join(root, 'tiles', 'masks'), { recursive: true });
  cpSync(join(synth, 'wood', 'train', 'good', '000.png'), join(root, 'tiles', 'images', 'a.png'));
  cpSync(join(synth, 'wood', 'test', 'stain', '000.png'), join(root, 'tiles', 'images', 'b.png'));
  cpSync(
    join(synth, 'wood', 'ground_truth', 'stain', '000_mask.png'),
    join(root, 'tiles', 'masks', 'b_mask.png'),
  );
  assert.equal(await detectFormat(root), 'folder');
  const ds = await openDataset({ root });
  assert.deepEqual(
    ds.samples('tiles', 'test').map((s) => [s.defect, s.label, s.maskPath]),
    [
      ['good', 0, null],
      ['anomaly', 1, join(root, 'tiles', 'masks', 'b_mask.png')],
    ],
  );
  assert.equal(ds.samples('tiles', 'train').length, 2);
});

test('an unrecognisable root is a user error that says what was looked for', async () => {
  const root = mkdtempSync(join(tmpdir(), 'vcp-empty-'));
  await assert.rejects(
    detectFormat(root),
    (e: unknown) => e instanceof UserError && /--format/.test(e.hint ?? ''),
  );
  await assert.rejects(detectFormat(join(root, 'absent')), /does not exist/);
});
