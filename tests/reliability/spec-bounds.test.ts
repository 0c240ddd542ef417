/**
 * Issue 12, cases 1, 7, 8, 11 and 16: a spec is untrusted input. Parsing, merging and
 * expanding it is bounded in time and memory (alias bombs, huge or deep documents, device
 * files as bases, sweeps of a billion trials), every numeric field has a sane range, two
 * sweep points that are one trial run once, and every message names file:line:col.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadSpec } from '../../src/runner/spec.js';
import { SpecError } from '../../src/runner/spec-error.js';
import { MAX_SPEC_BYTES } from '../../src/runner/limits.js';
import { projectRoot } from '../../src/tracking/server.js';

const dir = mkdtempSync(join(tmpdir(), 'vcp-spec-bounds-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const TINY = join(projectRoot(), 'assets/clip/tiny-clip');
const BODY = `train: { dataset: { format: mvtec, root: ./data } }
eval: { datasets: [{ name: d, format: mvtec, root: ./data }] }
base: { backbone: ${TINY}, image_size: 32, layers: [1, 2, 3], pre_vcp: false, heads: 2 }
`;

function write(name: string, text: string | Buffer): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The error lines of loading `file` (`file:line:col path message`). */
async function errorsOf(file: string): Promise<string[]> {
  try {
    await loadSpec(file);
  } catch (error) {
    assert.ok(error instanceof SpecError, `expected a SpecError, got ${String(error)}`);
    assert.equal(error.exitCode, 2);
    return error.message.split('\n').slice(1);
  }
  assert.fail(`${file} loaded without errors`);
}

function cli(...args: string[]) {
  return spawnSync(process.execPath, [join(projectRoot(), 'bin/vcp-exp.js'), ...args], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 60_000,
  });
}

test('case 1: a YAML alias bomb is refused after a bounded walk, exit 2, not a hang', () => {
  // 9 levels of 9 aliases each: 9^9 ≈ 387 million nodes once expanded.
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i <= 8; i++)
    lines.push(
      `a${i}: &a${i} [${Array(9)
        .fill(`*a${i - 1}`)
        .join(', ')}]`,
    );
  write('bomb.yaml', `name: bomb\n${lines.join('\n')}\n${BODY}`);
  const r = cli('plan', 'bomb.yaml');
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /bomb\.yaml:\d+:\d+ \S+ YAML expands to more than 100,000 values/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('case 1: nesting, size and encoding bounds are checked before the YAML parser runs', async () => {
  // The YAML parser overflows its stack (2000 levels) or runs out of memory (10000).
  const deep = write('deep.yaml', `name: deep\nx: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`);
  assert.deepEqual(await errorsOf(deep), [
    `${deep}:2:68 (root) YAML nests deeper than 64 levels of [ ] / { } here; a spec needs a handful`,
  ]);
  const big = write('big.yaml', `name: big\ndescription: "${'x'.repeat(MAX_SPEC_BYTES)}"\n`);
  const [line] = await errorsOf(big);
  assert.match(
    line,
    /big\.yaml \(root\) cannot read spec: 1,048,\d+ bytes; a spec file is at most 1,048,576 bytes/,
  );
});

test('case 7: seeds: 1000000000 and a sweep beyond the trial limit are errors, not an out-of-memory crash', async () => {
  const seeds = write('seeds.yaml', `name: seeds\nseeds: 1000000000\n${BODY}`);
  assert.deepEqual(await errorsOf(seeds), [
    `${seeds}:2:8 seeds got 1,000,000,000 seeds, more than the limit of 10,000 trials; raise execution.max_trials if you mean it`,
  ]);
  const grid = `sweep: { grid: { alpha: [0.1, 0.2, 0.3], sigma: [1, 2] } }\nseeds: 2\n`;
  const wide = write('wide.yaml', `name: wide\n${grid}execution: { max_trials: 11 }\n${BODY}`);
  assert.deepEqual(await errorsOf(wide), [
    `${wide}:2:1 sweep the sweep expands to 12 trials (3 alpha × 2 sigma × 2 seeds), more than the limit of 11; raise execution.max_trials if you mean it`,
  ]);
  // The override: the same sweep within a raised limit loads.
  const ok = write('ok.yaml', `name: ok\n${grid}execution: { max_trials: 12 }\n${BODY}`);
  assert.equal((await loadSpec(ok)).trials.length, 12);
});

test('case 7: every numeric field has a range (image_size 800000 fails at its line)', async () => {
  const file = write(
    'size.yaml',
    `name: size\n${BODY.replace('image_size: 32', 'image_size: 800000')}`,
  );
  assert.deepEqual(await errorsOf(file), [
    `${file}:4:${BODY.split('\n')[2].indexOf('image_size') + 'image_size: '.length + 1} base.image_size got 800000, expected an integer in [1, 4096]`,
  ]);
  const many = write(
    'many.yaml',
    `name: many\nsweep: { grid: { topk: [100000000], epochs: [0] } }\nseeds: [4294967296]\nexecution: { workers: 100000 }\n${BODY}`,
  );
  const errors = await errorsOf(many);
  assert.ok(
    errors.some((e) =>
      / seeds\[0\] got 4294967296, expected an integer in \[0, 4294967295\]/.test(e),
    ),
    errors.join('\n'),
  );
  assert.ok(
    errors.some((e) => / execution\.workers got 100000, expected an integer in \[1, 256\]/.test(e)),
    errors.join('\n'),
  );
  assert.ok(
    errors.some((e) =>
      / sweep\.grid\.topk\[0\] got 100000000, expected an integer in \[1, 16777216\]/.test(e),
    ),
    errors.join('\n'),
  );
});

test('case 8: two variants that resolve to one config are one trial, with a warning naming both', async () => {
  const file = write(
    'variants.yaml',
    `name: variants\nseeds: 2\nsweep:\n  variants:\n    - { name: a, set: { heads: 4 } }\n    - { name: b, set: { heads: 2 } }\n    - { name: c, set: { heads: 4 } }\n${BODY}`,
  );
  const spec = await loadSpec(file);
  assert.equal(spec.trials.length, 4, 'variants a and b, two seeds each');
  assert.equal(new Set(spec.trials.map((t) => t.id)).size, 4, 'ids are unique in the plan');
  assert.deepEqual(
    spec.trials.map((t) => t.index),
    [0, 1, 2, 3],
  );
  assert.deepEqual(
    spec.trials.map((t) => t.variant),
    ['a', 'a', 'b', 'b'],
  );
  const warning = spec.warnings.filter((w) => /same trial config/.test(w));
  assert.equal(warning.length, 1, spec.warnings.join('\n'));
  assert.match(
    warning[0],
    /variants\.yaml:7:\d+ sweep\.variants\[2\]\.name warning: variant "c" resolves to the same trial config as variant "a" \(trial id [0-9a-f]{12}\): it runs once and is reported as variant "a"/,
  );
});

test('case 11: extends only to a YAML map, a regular file under the size bound, in a short chain', async () => {
  const passwd = write('passwd.yaml', `name: p\nextends: /etc/passwd\n${BODY}`);
  const [p] = await errorsOf(passwd);
  assert.match(
    p,
    /passwd\.yaml:2:10 extends (base spec \/etc\/passwd is a string, expected a YAML map|cannot read base spec)/,
  );
  const zero = write('zero.yaml', `name: z\nextends: /dev/zero\n${BODY}`);
  assert.deepEqual(await errorsOf(zero), [
    `${zero}:2:10 extends cannot read base spec: not a regular file (a device, FIFO or socket); a spec is a YAML file: /dev/zero`,
  ]);
  write('list-base.yaml', '- a\n- b\n');
  const list = write('list.yaml', `name: l\nextends: ./list-base.yaml\n${BODY}`);
  assert.match(
    (await errorsOf(list))[0],
    /list\.yaml:2:10 extends base spec \S*list-base\.yaml is a list, expected a YAML map/,
  );
  for (let i = 0; i < 20; i++) write(`chain${i}.yaml`, `extends: ./chain${i + 1}.yaml\n`);
  write('chain20.yaml', `name: chain\n${BODY}`);
  const [chain] = await errorsOf(join(dir, 'chain0.yaml'));
  assert.match(chain, /chain15\.yaml:1:10 extends extends chain longer than 16 files/);
});

test('case 16: NaN, infinities, a top-level list, seeds beyond 2^53, Latin-1 and file:// are clear errors at their line', async () => {
  const nan = write('nan.yaml', `name: nan\nsweep: { grid: { alpha: [.nan, .inf] } }\n${BODY}`);
  assert.deepEqual(await errorsOf(nan), [
    `${nan}:2:26 sweep.grid.alpha[0] got .nan, expected a finite number`,
    `${nan}:2:32 sweep.grid.alpha[1] got .inf, expected a finite number`,
  ]);
  const list = write('list-spec.yaml', '- name: x\n');
  assert.deepEqual(await errorsOf(list), [
    `${list}:1:1 (root) got a list, expected a map of spec sections (name, base, sweep, train, eval, …)`,
  ]);
  const big = write('bigseed.yaml', `name: big\nseeds: 9007199254740993\n${BODY}`);
  assert.deepEqual(await errorsOf(big), [
    `${big}:2:8 seeds got 9007199254740992, beyond 2^53: numbers this large are not exact as written (YAML rounds such integers), and no spec field takes one`,
  ]);
  const latin = write(
    'latin1.yaml',
    Buffer.concat([
      Buffer.from('name: l\ndescription: caf'),
      Buffer.from([0xe9]),
      Buffer.from(`\n${BODY}`),
    ]),
  );
  assert.deepEqual(await errorsOf(latin), [
    `${latin}:2:17 (root) not UTF-8: byte 0xE9 cannot start or continue a UTF-8 character (Latin-1 or another legacy encoding?); save the file as UTF-8`,
  ]);
  const uri = write('uri.yaml', `name: u\ntracking: { uri: 'file:///tmp/mlruns' }\n${BODY}`);
  assert.deepEqual(await errorsOf(uri), [
    `${uri}:2:18 tracking.uri got "file:///tmp/mlruns", expected a string matching /^https?:\\/\\//`,
  ]);
});
