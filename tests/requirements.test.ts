/** The "required here" policy itself: one CI definition; in CI a missing dependency fails. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inCI } from '../src/io/ci.js';
import { DEPENDENCIES, pythonWith, unavailable } from './requirements.js';

const printed: string[] = [];

/** Runs with CI set to `value`, keeping what the policy prints out of the test log. */
function withCI<T>(value: string | undefined, run: () => T): T {
  const saved = process.env.CI;
  const log = console.log;
  console.log = (line: string) => printed.push(line);
  if (value === undefined) delete process.env.CI;
  else process.env.CI = value;
  try {
    return run();
  } finally {
    console.log = log;
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  }
}

test('inCI: CI set to anything but empty, 0 or false', () => {
  for (const value of ['true', '1', 'yes', 'TRUE', 'github-actions'])
    assert.equal(inCI({ CI: value }), true, value);
  for (const value of [undefined, '', '0', 'false', 'False', ' false '])
    assert.equal(inCI({ CI: value }), false, String(value));
});

test('a missing dependency fails in CI, is a printed skip reason elsewhere; only listed ones may be missing in CI', () => {
  assert.throws(
    () => withCI('true', () => unavailable('clip-tokenizer', 'no tokenizer.json in /nowhere')),
    /required in CI: the real CLIP tokenizer files .* is unavailable \(no tokenizer\.json in \/nowhere\); set VCP_EXP_CLIP_TOKENIZER/,
  );
  for (const dependency of ['native-backend', 'project-python', 'numpy-python', 'mlflow'] as const)
    assert.throws(() => withCI('1', () => unavailable(dependency, 'gone')), /required in CI/);
  printed.length = 0;
  const message = withCI(undefined, () => unavailable('mlflow', 'no .venv/bin/mlflow'));
  assert.deepEqual(printed, [`# skipping: ${message}`]);
  assert.match(
    message,
    /^a local MLflow server is unavailable \(no \.venv\/bin\/mlflow\); run `npm run setup:mlflow`$/,
  );
  assert.match(
    withCI('true', () => unavailable('torch-python', 'no torch')),
    /torch/,
  );
  const optional = Object.entries(DEPENDENCIES)
    .filter(([, info]) => 'optionalInCI' in info)
    .map(([name]) => name);
  assert.deepEqual(
    optional,
    ['gpu-build', 'torch-python', 'hub-python', 'tmpfs-mount'],
    'README "Testing" lists exactly these',
  );
});

test('VCP_EXP_PYTHON that does not exist is reported, not silently replaced', () => {
  const saved = process.env.VCP_EXP_PYTHON;
  process.env.VCP_EXP_PYTHON = '/nonexistent/python';
  try {
    const result = pythonWith(['json']);
    assert.deepEqual(result, {
      ok: false,
      reason: 'VCP_EXP_PYTHON=/nonexistent/python does not exist',
    });
  } finally {
    if (saved === undefined) delete process.env.VCP_EXP_PYTHON;
    else process.env.VCP_EXP_PYTHON = saved;
  }
});
