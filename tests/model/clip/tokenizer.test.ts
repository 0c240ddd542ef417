import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserError } from '../../../src/errors.js';
import { ClipTokenizer } from '../../../src/model/clip/tokenizer.js';
import { tinyTokenizerJson } from './helpers.js';
import { need, realTokenizer } from '../../requirements.js';

interface Golden {
  contextLength: number;
  sot: number;
  eot: number;
  cases: { text: string; ids: number[]; padded: number[]; eosIndex: number }[];
  pieces: Record<string, number[]>;
}
const golden = JSON.parse(
  readFileSync(new URL('../../fixtures/clip/tokenizer-golden.json', import.meta.url), 'utf8'),
) as Golden;

test('real CLIP tokenizer: ids equal transformers and OpenAI BPE on every golden prompt', async (t) => {
  const realDir = need(t, 'clip-tokenizer', realTokenizer());
  if (!realDir) return;
  const tokenizer = await ClipTokenizer.fromDirectory(realDir);
  assert.equal(tokenizer.sotId, golden.sot);
  assert.equal(tokenizer.eotId, golden.eot);
  assert.ok(golden.cases.length >= 35);
  for (const { text, ids } of golden.cases)
    assert.deepEqual(tokenizer.encode(text), ids, JSON.stringify(text));
  for (const [piece, ids] of Object.entries(golden.pieces))
    assert.deepEqual(tokenizer.pieceIds(piece), ids, piece);
});

test('real CLIP tokenizer: batches are zero-padded and truncated like open_clip', async (t) => {
  const realDir = need(t, 'clip-tokenizer', realTokenizer());
  if (!realDir) return;
  const tokenizer = await ClipTokenizer.fromDirectory(realDir);
  const L = golden.contextLength;
  const { ids, eosIndex } = tokenizer.encodeBatch(golden.cases.map((c) => c.text));
  assert.equal(ids.length, golden.cases.length * L);
  golden.cases.forEach((c, row) => {
    const expected = [...c.padded, ...new Array<number>(L - c.padded.length).fill(0)];
    assert.deepEqual([...ids.subarray(row * L, (row + 1) * L)], expected, JSON.stringify(c.text));
    assert.equal(eosIndex[row], c.eosIndex);
  });
  const long = golden.cases.find((c) => c.ids.length > L)!;
  assert.equal(tokenizer.encodeBatch([long.text]).eosIndex[0], L - 1);
  assert.equal(tokenizer.encodeBatch([long.text]).ids[L - 1], golden.eot);
});

test('real CLIP tokenizer: a template with a placeholder matches the whole prompt around it', async (t) => {
  const realDir = need(t, 'clip-tokenizer', realTokenizer());
  if (!realDir) return;
  const tokenizer = await ClipTokenizer.fromDirectory(realDir);
  for (const [template, filler] of [
    ['a photo of a good [cls].', 'pcb1'],
    ['a cropped photo of the damaged X', 'metal nut'],
    ["[cls]'s close-up, flawless", 'pcb3'],
  ]) {
    const placeholder = template.includes('[cls]') ? '[cls]' : 'X';
    const encoded = tokenizer.encodeTemplate(template, placeholder, { slots: 2 });
    const whole = tokenizer.encode(template.replace(placeholder, filler));
    const fillerIds = tokenizer.pieceIds(filler);
    assert.equal(fillerIds.length, 2, filler);
    const ids = [...encoded.ids.subarray(0, encoded.eosIndex + 1)];
    ids.splice(encoded.placeholderIndex, 2, ...fillerIds);
    assert.deepEqual(ids, whole, template);
    assert.equal(encoded.ids[encoded.eosIndex], tokenizer.eotId);
    assert.ok(encoded.ids.subarray(encoded.eosIndex + 1).every((v) => v === 0));
  }
});

test('tiny tokenizer: SOS/EOS, merges, padding and truncation', () => {
  const tokenizer = ClipTokenizer.fromJson(tinyTokenizerJson(), {});
  assert.equal(tokenizer.sotId, 521);
  assert.equal(tokenizer.eotId, 522);
  const ids = tokenizer.encode('A  Photo of GOOD');
  assert.equal(ids.length, 2 + 4); // "a" "photo" "of" "good"
  assert.equal(tokenizer.decode(ids), 'a photo of good');
  const { ids: batch, eosIndex } = tokenizer.encodeBatch(['good', 'xyz '.repeat(10)], 8);
  assert.deepEqual(
    [...batch.subarray(0, 8)],
    [521, ...tokenizer.pieceIds('good'), 522, 0, 0, 0, 0, 0],
  );
  assert.deepEqual(eosIndex, [2, 7]);
  assert.equal(batch[15], 522);
});

test('template errors name the template and the placeholder', () => {
  const tokenizer = ClipTokenizer.fromJson(tinyTokenizerJson(), {});
  assert.throws(
    () => tokenizer.encodeTemplate('a photo of a good thing', '[cls]'),
    (e: Error) =>
      e instanceof UserError && /"\[cls\]" exactly once, found it 0 times/.test(e.message),
  );
  assert.throws(() => tokenizer.encodeTemplate('[cls] and [cls]', '[cls]'), /found it 2 times/);
  assert.throws(
    () => tokenizer.encodeTemplate('good [cls]', '[cls]', { slots: 10, contextLength: 8 }),
    /needs 13 tokens .* holds 8/,
  );
});

test('fromDirectory: missing or broken tokenizer.json is a UserError naming the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vcp-tok-'));
  try {
    await assert.rejects(
      ClipTokenizer.fromDirectory(dir),
      (e: Error) => e instanceof UserError && e.message.includes(join(dir, 'tokenizer.json')),
    );
    await writeFile(join(dir, 'tokenizer.json'), '{"model": ');
    await assert.rejects(ClipTokenizer.fromDirectory(dir), /tokenizer\.json: not valid JSON/);
    const noSpecial = tinyTokenizerJson() as {
      added_tokens: unknown[];
      post_processor: unknown;
      model: { vocab: Record<string, number> };
    };
    delete noSpecial.model.vocab['<|startoftext|>'];
    noSpecial.added_tokens = [];
    noSpecial.post_processor = null;
    await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(noSpecial));
    await assert.rejects(
      ClipTokenizer.fromDirectory(dir),
      /not a CLIP tokenizer: the vocabulary has no <\|startoftext\|>/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
