import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/errors.js';
import { loadSpec } from '../../src/runner/spec.js';
import { formatPath, SpecError, type SpecIssue } from '../../src/runner/spec-error.js';

const BROKEN = 'tests/fixtures/specs/broken';
const EXPECT = /^# expect: (\S*?):(\d+):(\d+) (\S+) \| (.*)$/;

async function specErrors(file: string): Promise<SpecIssue[]> {
  try {
    await loadSpec(file);
  } catch (error) {
    assert.ok(error instanceof SpecError, `${file}: expected a SpecError, got ${String(error)}`);
    assert.ok(error instanceof UserError);
    assert.equal(error.exitCode, 2);
    return error.issues.filter((i) => i.severity === 'error');
  }
  assert.fail(`${file} loaded without errors`);
}

const cases = readdirSync(BROKEN)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((f) => ({
    file: join(BROKEN, f),
    expected: readFileSync(join(BROKEN, f), 'utf8')
      .split('\n')
      .filter((l) => EXPECT.test(l)),
  }))
  .filter((c) => c.expected.length > 0);

test('the broken-spec corpus has at least 30 kinds', () => {
  assert.ok(cases.length >= 30, `only ${cases.length} cases`);
});

for (const { file, expected } of cases) {
  test(`broken spec ${file}`, async () => {
    const issues = await specErrors(file);
    const want = expected.map((line) => {
      const [, other, l, c, path, message] = EXPECT.exec(line)!;
      return {
        file: other ? join(BROKEN, other) : file,
        line: Number(l),
        col: Number(c),
        path,
        message: message.replaceAll('<repo>/', `${process.cwd()}/`),
      };
    });
    const got = issues.map((i) => ({
      file: i.file,
      line: i.line,
      col: i.col,
      path: formatPath(i.path),
      message: i.message,
    }));
    assert.deepEqual(got, want);
  });
}

test('every error of a spec is reported at once, rendered file:line:col path message', async () => {
  const file = join(BROKEN, 'many-errors.yaml');
  try {
    await loadSpec(file);
    assert.fail('loaded');
  } catch (error) {
    const e = error as SpecError;
    assert.equal(e.issues.filter((i) => i.severity === 'error').length, 5);
    assert.match(e.message, /^invalid experiment spec: 5 errors\n/);
    assert.ok(e.message.includes(`${file}:9:10 base.n_ctx got 0, expected an integer in [1, 64]`));
    assert.ok(
      e.message.includes(`${file}:18:23 execution.workers got 0, expected an integer in [1, 256]`),
    );
  }
});

test('a missing dataset root is a warning at load, not an error', async () => {
  const spec = await loadSpec('tests/fixtures/specs/ok/alpha-only.yaml');
  assert.equal(spec.warnings.length, 1);
  assert.match(
    spec.warnings[0],
    /^tests\/fixtures\/specs\/ok\/alpha-only\.yaml:2:\d+ train\.dataset\.root warning: train dataset root .*data does not exist here/,
  );
});
