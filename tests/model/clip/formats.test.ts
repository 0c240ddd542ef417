// `weights pull` against the local Hub-like server, for every format CLIP weights are published
// in: the fixtures are the tiny CLIP written by torch, open_clip and safetensors
// (python/golden/make_weight_formats.py). Each resolved checkpoint must hold the tiny CLIP's
// tensors bit for bit and give the same features; hostile and broken files are refused with
// nothing run.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../../src/errors.js';
import { initBackend } from '../../../src/model/backend.js';
import { readSafetensors } from '../../../src/io/safetensors.js';
import { parseClipConfig } from '../../../src/model/clip/config.js';
import { createClipModel } from '../../../src/model/clip/model.js';
import { pullClipCheckpoint, type PullOptions } from '../../../src/model/clip/pull.js';
import { loadClipCheckpoint } from '../../../src/model/clip/weights.js';
import { tf } from '../../../src/model/tf.js';
import {
  COMMIT,
  CONVERSION_PR_TITLE,
  commitOf,
  startHubServer,
  type Discussion,
  type HubRepo,
  type HubServer,
} from './hub-server.js';
import { TINY_FIXTURE } from './helpers.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/', import.meta.url));
const TINY = TINY_FIXTURE;
const FORMATS = join(FIXTURES, 'clip/formats');
const read = (dir: string, name: string) => readFileSync(join(dir, name));
const TOKENIZER = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.json',
  'merges.txt',
];
const tokenizerFiles = (): [string, Buffer][] => TOKENIZER.map((n) => [n, read(TINY, n)]);
const config = read(TINY, 'config.json');
const safetensors = read(TINY, 'model.safetensors');
const torchBin = read(FORMATS, 'pytorch_model.bin');
const files = (...entries: [string, Buffer][]) => new Map(entries);

const mainFiles = files(['config.json', config], ...tokenizerFiles(), [
  'pytorch_model.bin',
  torchBin,
]);
const withSafetensors = files(...mainFiles, ['model.safetensors', safetensors]);
const fillers: Discussion[] = Array.from({ length: 55 }, (_, i) => ({
  num: i + 1,
  title: `question ${i + 1}`,
  author: 'someone',
  isPullRequest: false,
}));
const otherBin = Buffer.from(torchBin);
otherBin[otherBin.length - 30] ^= 1; // another pytorch_model.bin (a different file)

const repos = new Map<string, Map<string, Buffer> | HubRepo>([
  // safetensors only in the bot's conversion PR (#56, on the second page of discussions); a
  // newer PR with the same title by someone else must be ignored.
  [
    'test-org/pr-only',
    {
      revisions: new Map([
        ['main', mainFiles],
        ['refs/pr/56', withSafetensors],
        ['refs/pr/57', files(...mainFiles, ['model.safetensors', Buffer.from('not the weights')])],
      ]),
      discussions: [
        ...fillers,
        { num: 56, title: CONVERSION_PR_TITLE, author: 'SFconvertbot' },
        { num: 57, title: CONVERSION_PR_TITLE, author: 'mallory' },
      ],
    },
  ],
  // The common case: safetensors only on refs/pr/1, the bot's conversion of main.
  [
    'test-org/pr-1',
    {
      revisions: new Map([
        ['main', mainFiles],
        ['refs/pr/1', withSafetensors],
      ]),
      discussions: [{ num: 1, title: CONVERSION_PR_TITLE, author: 'SFconvertbot' }],
    },
  ],
  // A bot PR that branched from an older commit and converted another pytorch_model.bin.
  [
    'test-org/pr-stale',
    {
      revisions: new Map([
        ['main', mainFiles],
        [
          'refs/pr/1',
          files(...mainFiles, ['pytorch_model.bin', otherBin], ['model.safetensors', safetensors]),
        ],
      ]),
      parents: new Map([['refs/pr/1', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa']]),
      discussions: [{ num: 1, title: CONVERSION_PR_TITLE, author: 'SFconvertbot' }],
    },
  ],
  ['test-org/torch-only', mainFiles],
  [
    'test-org/open-clip',
    files(
      ...(['open_clip_config.json', 'open_clip_model.safetensors', ...TOKENIZER].map((n) => [
        n,
        read(join(FORMATS, 'open_clip'), n),
      ]) as [string, Buffer][]),
    ),
  ],
  // A timm `*.openai` repository: a timm config.json and vision-only model.safetensors beside
  // the OpenCLIP files, and no tokenizer.
  [
    'test-org/timm-like',
    files(
      [
        'config.json',
        Buffer.from(JSON.stringify({ architecture: 'vit_tiny_clip', num_classes: 0 })),
      ],
      ['model.safetensors', Buffer.from('timm vision tower')],
      ['open_clip_config.json', read(join(FORMATS, 'open_clip'), 'open_clip_config.json')],
      ['open_clip_pytorch_model.bin', torchBin],
      [
        'open_clip_model.safetensors',
        read(join(FORMATS, 'open_clip'), 'open_clip_model.safetensors'),
      ],
    ),
  ],
  [
    'test-org/tiny-clip',
    files(['config.json', config], ...tokenizerFiles(), ['model.safetensors', safetensors]),
  ],
  [
    'test-org/malicious',
    files(['config.json', config], ...tokenizerFiles(), [
      'pytorch_model.bin',
      read(FIXTURES, 'torch-zip/os-system.pth'),
    ]),
  ],
  [
    'test-org/truncated',
    files(['config.json', config], ...tokenizerFiles(), [
      'pytorch_model.bin',
      torchBin.subarray(0, torchBin.length >> 1),
    ]),
  ],
]);

let server: HubServer;
const tmp = await mkdtemp(join(tmpdir(), 'vcp-formats-'));
let counter = 0;
before(async () => {
  server = await startHubServer(repos);
  await initBackend('cpu');
});
after(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});
beforeEach(() => server.reset());

function pull(id: string, extra: Partial<PullOptions> = {}) {
  return pullClipCheckpoint({
    id,
    endpoint: server.endpoint,
    cacheDir: join(tmp, `cache-${counter++}`),
    hfCacheDir: join(tmp, `hf-${counter++}`),
    retryDelayMs: 5,
    ...extra,
  });
}

const { tensors: reference } = await readSafetensors(join(TINY, 'model.safetensors'));
const referenceConfig = parseClipConfig(JSON.parse(config.toString()), 'tiny-clip/config.json');

/** Same names, shapes and float32 bits as tiny-clip/model.safetensors. */
async function assertBitIdentical(dir: string): Promise<void> {
  const checkpoint = await loadClipCheckpoint(dir);
  assert.deepEqual(checkpoint.config, referenceConfig);
  assert.deepEqual([...checkpoint.tensors.keys()].sort(), [...reference.keys()].sort());
  for (const [name, tensor] of reference) {
    const got = checkpoint.tensors.get(name)!;
    assert.deepEqual(got.shape, tensor.shape, name);
    assert.ok(
      Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength).equals(
        Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength),
      ),
      `${name}: values differ`,
    );
  }
}

/** Image and text features of a loaded checkpoint, for the parity check. */
async function features(dir: string): Promise<Float32Array[]> {
  const checkpoint = await loadClipCheckpoint(dir);
  const model = createClipModel(checkpoint.config, checkpoint.tensors, { source: dir });
  const pixels = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 7) as tf.Tensor4D;
  const out = model.vision.forward(pixels, { layers: [2] });
  const ids = [checkpoint.tokenizer.encode('a photo of a damaged object')];
  const text = model.text.encodeText(
    ids.map((row) => [...row, ...new Array<number>(77 - row.length).fill(0)]),
  );
  const result = [out.global, out.layers[0], text].map((t) => t.dataSync() as Float32Array);
  tf.dispose([pixels, out.global, ...out.layers, text]);
  model.dispose();
  return result;
}

const resolved = new Map<string, string>();

test('model.safetensors on the revision: taken as published, pinned to the commit', async () => {
  const result = await pull('test-org/tiny-clip');
  assert.equal(result.format, 'safetensors');
  assert.equal(result.commit, COMMIT);
  assert.ok(
    server.requests.some(
      (r) => r.path === `/test-org/tiny-clip/resolve/${COMMIT}/model.safetensors`,
    ),
  );
  await assertBitIdentical(result.dir);
  resolved.set('safetensors', result.dir);
});

test("safetensors only in the conversion PR: the bot's PR is found (page 2), named and pinned by commit; another author's is ignored", async () => {
  const result = await pull('test-org/pr-only');
  assert.equal(result.format, 'conversion-pr');
  const prCommit = commitOf('test-org/pr-only', 'refs/pr/56');
  assert.deepEqual(result.manifest.pullRequest, {
    num: 56,
    title: CONVERSION_PR_TITLE,
    author: 'SFconvertbot',
    commit: prCommit,
  });
  assert.match(
    result.origin,
    /pull request #56 "Adding `safetensors` variant of this model" by SFconvertbot \(refs\/pr\/56 @ [0-9a-f]{12}\)/,
  );
  assert.ok(
    result.notes.some((n) => /ignored pull request #57 by mallory/.test(n)),
    result.notes.join('\n'),
  );
  const weightGets = server.requests.filter(
    (r) => r.method === 'GET' && /model\.safetensors|pytorch_model\.bin/.test(r.path),
  );
  assert.deepEqual(
    weightGets.map((r) => r.path),
    [`/cdn/${encodeURIComponent('test-org/pr-only')}/${prCommit}/model.safetensors`],
  );
  assert.ok(server.requests.some((r) => r.path.endsWith('/discussions') && r.status === 200));
  await assertBitIdentical(result.dir);
  resolved.set('conversion-pr', result.dir);
  // With --hf-cache, Python's layout: the PR's file under its own commit and refs/refs/pr/56.
  const hfRoot = join(tmp, 'hf-pr');
  await pull('test-org/pr-only', { hfCache: true, hfCacheDir: hfRoot });
  const repo = join(hfRoot, 'models--test-org--pr-only');
  assert.equal(readFileSync(join(repo, 'refs/refs/pr/56'), 'utf8'), prCommit);
  assert.equal(readFileSync(join(repo, 'refs/main'), 'utf8'), COMMIT);
  assert.ok(existsSync(join(repo, 'snapshots', prCommit, 'model.safetensors')));
  assert.ok(existsSync(join(repo, 'snapshots', COMMIT, 'config.json')));
});

test('safetensors only on refs/pr/1: found without asking, or taken directly with --revision refs/pr/1', async () => {
  const found = await pull('test-org/pr-1');
  assert.equal(found.format, 'conversion-pr');
  assert.equal(found.manifest.source.revision, 'refs/pr/1');
  assert.equal(found.manifest.source.commit, commitOf('test-org/pr-1', 'refs/pr/1'));
  await assertBitIdentical(found.dir);
  const asked = await pull('test-org/pr-1', { revision: 'refs/pr/1' });
  assert.equal(asked.format, 'safetensors');
  assert.equal(asked.commit, commitOf('test-org/pr-1', 'refs/pr/1'));
  assert.match(asked.dir, /refs--pr--1$/);
  await assertBitIdentical(asked.dir);
});

test('a conversion PR made from another pytorch_model.bin is skipped, and the bin is converted instead', async () => {
  const result = await pull('test-org/pr-stale');
  assert.equal(result.format, 'pytorch_model.bin');
  assert.ok(
    result.notes.some((n) =>
      /ignored pull request #1: it branched from aaaaaaaaaaaa and converted another pytorch_model\.bin/.test(
        n,
      ),
    ),
    result.notes.join('\n'),
  );
  await assertBitIdentical(result.dir);
});

test('pytorch_model.bin only (written by torch): converted by the restricted reader, bit for bit; the source is not kept', async () => {
  const result = await pull('test-org/torch-only');
  assert.equal(result.format, 'pytorch_model.bin');
  assert.match(
    result.origin,
    /converted from pytorch_model\.bin of test-org\/torch-only main @ 0123456789ab \(restricted reader\)/,
  );
  assert.ok(
    result.notes.some(
      (n) => n.includes('left out 2 tensor(s)') && n.includes('text_model.embeddings.position_ids'),
    ),
    result.notes.join('\n'),
  );
  assert.equal(result.manifest.source.file, 'pytorch_model.bin');
  assert.equal(result.manifest.source.size, torchBin.length);
  assert.ok(!existsSync(join(result.dir, '.source')));
  assert.ok(!(await readdir(result.dir)).some((f) => f.endsWith('.bin')));
  await assertBitIdentical(result.dir);
  resolved.set('pytorch_model.bin', result.dir);
  await assert.rejects(pull('test-org/torch-only', { safetensorsOnly: true }), (e: Error) => {
    assert.ok(e instanceof UserError);
    assert.match(
      e.message,
      /test-org\/torch-only \(main, commit 0123456789ab\): the weights are published only as pytorch_model\.bin and --safetensors-only was given/,
    );
    return true;
  });
});

test('the OpenCLIP layout (open_clip_config.json + OpenAI names, written by open_clip) converts to the same CLIP', async () => {
  const result = await pull('test-org/open-clip');
  assert.equal(result.format, 'open_clip');
  const written = JSON.parse(await readFile(join(result.dir, 'config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  assert.equal(written.vcp_exp_converted_from, 'open_clip_config.json');
  await assertBitIdentical(result.dir);
  resolved.set('open_clip', result.dir);
});

test('a timm *.openai repository (timm config.json, no tokenizer) is read through its OpenCLIP files, the tokenizer from --tokenizer-from', async () => {
  const result = await pull('test-org/timm-like', { tokenizerFrom: 'test-org/tiny-clip' });
  assert.equal(result.format, 'open_clip');
  assert.equal(result.manifest.source.file, 'open_clip_model.safetensors');
  assert.deepEqual(result.manifest.tokenizer, {
    id: 'test-org/tiny-clip',
    revision: 'main',
    commit: COMMIT,
  });
  assert.match(result.origin, /tokenizer from test-org\/tiny-clip/);
  await assertBitIdentical(result.dir);
});

test('a pytorch_model.bin whose pickle calls os.system is refused, naming repo, file and global; nothing runs, nothing is kept', async () => {
  const marker = join(tmp, 'pwned');
  process.env.VCP_EXP_PWNED = marker;
  try {
    const cacheDir = join(tmp, 'malicious-cache');
    await assert.rejects(pull('test-org/malicious', { cacheDir }), (e: Error) => {
      assert.ok(e instanceof UserError, e.message);
      assert.match(
        e.message,
        /^test-org\/malicious \(main\): .*pytorch_model\.bin: state\/data\.pkl: refusing to load: the pickle imports os\.system/,
      );
      assert.match(
        e.hint ?? '',
        /pytorch_model\.bin is not a plain state dict and may be malicious: nothing from it was run and the download was deleted/,
      );
      return true;
    });
    const dir = join(cacheDir, 'models/test-org/malicious/main');
    assert.ok(!existsSync(join(dir, 'model.safetensors')));
    assert.ok(!existsSync(join(dir, '.source', 'pytorch_model.bin')));
    assert.ok(!existsSync(join(dir, 'vcp-weights.json')));
    assert.ok(!existsSync(marker), 'the pickle ran');
  } finally {
    delete process.env.VCP_EXP_PWNED;
  }
});

test('a truncated pytorch_model.bin (served as if whole) is a clear error and is deleted', async () => {
  const cacheDir = join(tmp, 'truncated-cache');
  await assert.rejects(pull('test-org/truncated', { cacheDir }), (e: Error) => {
    assert.ok(e instanceof UserError, e.message);
    assert.match(
      e.message,
      /^test-org\/truncated \(main\): .*pytorch_model\.bin: not a readable zip archive: no end-of-central-directory record \(the file is cut short\?\)/,
    );
    return true;
  });
  assert.ok(
    !existsSync(join(cacheDir, 'models/test-org/truncated/main/.source/pytorch_model.bin')),
  );
});

test('parity: the tiny CLIP loaded from every format gives the same features, bit for bit', async () => {
  // And as huggingface_hub cached it (used where it lies, no request).
  const hfRoot = join(tmp, 'hf-parity');
  await cp(join(FIXTURES, 'clip/hf-cache'), hfRoot, { recursive: true, verbatimSymlinks: true });
  server.requests.length = 0;
  resolved.set('hf-cache', (await pull('test-org/tiny-clip', { hfCacheDir: hfRoot })).dir);
  assert.deepEqual(server.requests, []);
  assert.deepEqual([...resolved.keys()].sort(), [
    'conversion-pr',
    'hf-cache',
    'open_clip',
    'pytorch_model.bin',
    'safetensors',
  ]);
  const expected = await features(resolved.get('safetensors')!);
  for (const [format, dir] of resolved) {
    const got = await features(dir);
    got.forEach((values, i) => {
      assert.equal(values.length, expected[i].length);
      assert.ok(
        Buffer.from(values.buffer, values.byteOffset, values.byteLength).equals(
          Buffer.from(expected[i].buffer, expected[i].byteOffset, expected[i].byteLength),
        ),
        `${format}: output ${i} differs`,
      );
    });
  }
});

test('errors name the repository, the file and what to do', async () => {
  await assert.rejects(pull('test-org/nothing'), (e: Error) => {
    assert.ok(e instanceof UserError);
    assert.match(
      e.message,
      /^test-org\/nothing \(main\): nothing found at http:\/\/127\.0\.0\.1:\d+\/test-org\/nothing\/resolve\/main\/config\.json \(404\)/,
    );
    assert.match(e.hint ?? '', /check the model id, the revision and the endpoint/);
    return true;
  });
  server.faults.noApi = true;
  const probed = await pull('test-org/torch-only');
  assert.equal(probed.format, 'pytorch_model.bin');
  assert.ok(probed.notes.some((n) => /has no Hub API/.test(n)));
});
