/**
 * A spec whose trials need weights or datasets that are not here: `plan` lists them and
 * `vcp-exp run` prints the plan and refuses before starting anything (no MLflow server, no
 * trial), naming the missing CLIP weights with the command that pulls them.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCommand } from '../../src/commands/run.js';
import { UserError } from '../../src/errors.js';
import { planSpec } from '../../src/runner/plan.js';
import { loadSpec } from '../../src/runner/spec.js';

const work = mkdtempSync(join(tmpdir(), 'vcp-requirements-'));
const saved = { cache: process.env.VCP_EXP_CACHE, state: process.env.VCP_EXP_STATE_DIR };
process.env.VCP_EXP_CACHE = join(work, 'cache');
process.env.VCP_EXP_STATE_DIR = join(work, 'state');
after(() => {
  for (const [key, value] of [
    ['VCP_EXP_CACHE', saved.cache],
    ['VCP_EXP_STATE_DIR', saved.state],
  ] as const)
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  rmSync(work, { recursive: true, force: true });
});

const SPEC = 'experiments/ablation-heads.yaml';
const PULL =
  /CLIP weights of ViT-L-14-336: .*not downloaded.*run: vcp-exp weights pull openai\/clip-vit-large-patch14-336/;

test('the plan names the missing weights and dataset roots', async () => {
  const plan = await planSpec(await loadSpec(SPEC));
  assert.match(plan.missing[0], PULL);
  assert.ok(
    plan.missing.some((m) => /train dataset \(visa\): .*data\/visa does not exist/.test(m)),
  );
});

test('vcp-exp run experiments/ablation-heads.yaml plans, then starts nothing while weights are missing', async () => {
  const printed: string[] = [];
  const log = console.log;
  const warn = console.error;
  console.log = (line: string) => printed.push(line);
  console.error = () => undefined;
  try {
    await assert.rejects(runCommand(SPEC, {}), (error: unknown) => {
      assert.ok(error instanceof UserError);
      assert.match(error.message, PULL);
      assert.match(error.hint ?? '', /run the same command again/);
      return true;
    });
  } finally {
    console.log = log;
    console.error = warn;
  }
  assert.match(printed.join('\n'), /15 trials: 15 trainings, 15 evaluations/);
  assert.equal(existsSync(join(work, 'state')), false, 'no MLflow server or trial was started');
});
