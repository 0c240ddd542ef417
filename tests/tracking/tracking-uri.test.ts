/**
 * One rule for the MLflow server of every command: --tracking-uri, else MLFLOW_TRACKING_URI,
 * else the spec's tracking.uri, else the managed local server; the error names the setting
 * that chose an unreachable server.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { chooseTrackingUri, TRACKING_URI_RULE } from '../../src/tracking/tracking-uri.js';

const spec = { uri: 'http://spec.example:5000', file: 'exp.yaml' };

test('flag > MLFLOW_TRACKING_URI > spec tracking.uri > managed server', () => {
  const env = { MLFLOW_TRACKING_URI: 'http://env.example:5000' };
  assert.deepEqual(chooseTrackingUri({ flag: 'http://flag.example:5000', env, spec }), {
    uri: 'http://flag.example:5000',
    source: 'flag',
    origin: '--tracking-uri',
  });
  assert.equal(chooseTrackingUri({ env, spec }).uri, 'http://env.example:5000');
  assert.equal(chooseTrackingUri({ env, spec }).source, 'env');
  assert.equal(chooseTrackingUri({ env: {}, spec }).uri, spec.uri);
  assert.equal(chooseTrackingUri({ env: {}, spec }).origin, 'tracking.uri of exp.yaml');
  assert.equal(chooseTrackingUri({ env: { MLFLOW_TRACKING_URI: '  ' }, spec }).source, 'spec');
  assert.deepEqual(chooseTrackingUri({ env: {} }), {
    source: 'managed',
    origin: 'the managed local server',
  });
  assert.throws(
    () => chooseTrackingUri({ env: {}, spec: { uri: 'file:///tmp/mlruns', file: 'exp.yaml' } }),
    /tracking\.uri of exp\.yaml "file:\/\/\/tmp\/mlruns" is not an http\(s\) MLflow server/,
  );
});

const work = mkdtempSync(join(tmpdir(), 'vcp-tracking-uri-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('plan, report and compare follow the rule and name the setting that chose the server', () => {
  const file = join(work, 'exp.yaml');
  writeFileSync(
    file,
    `name: precedence
base: { backbone: tiny-clip, image_size: 32, layers: [1, 2, 3], pre_vcp: false }
train: { dataset: { format: mvtec, root: ./data } }
eval: { datasets: [{ name: d, format: mvtec, root: ./data }] }
tracking: { uri: "http://127.0.0.1:9" }
`,
  );
  // Nothing listens on port 9 (discard) nor 7: each command must fail naming the chosen setting.
  const cli = (args: string[], env: Record<string, string>) =>
    spawnSync(process.execPath, ['bin/vcp-exp.js', ...args], {
      encoding: 'utf8',
      env: { ...process.env, VCP_EXP_STATE_DIR: join(work, 'state'), ...env },
    });
  const envUri = { MLFLOW_TRACKING_URI: 'http://127.0.0.1:7' };
  for (const args of [
    ['plan', file, '--no-estimate'],
    ['report', file],
    ['compare', 'a', 'b'],
  ]) {
    const fromEnv = cli(args, envUri);
    assert.notEqual(fromEnv.status, 0);
    assert.match(
      fromEnv.stderr,
      /127\.0\.0\.1:7 \(from MLFLOW_TRACKING_URI\) unreachable/,
      args[0],
    );
    const fromFlag = cli([...args, '--tracking-uri', 'http://127.0.0.1:9'], envUri);
    assert.match(fromFlag.stderr, /127\.0\.0\.1:9 \(from --tracking-uri\) unreachable/, args[0]);
  }
  const fromSpec = cli(['report', file], { MLFLOW_TRACKING_URI: '' });
  assert.match(fromSpec.stderr, /127\.0\.0\.1:9 \(from tracking\.uri of .*exp\.yaml\) unreachable/);
  assert.match(fromSpec.stderr, /edit the spec's tracking\.uri/);

  for (const command of ['run', 'plan', 'report', 'rerun']) {
    const help = cli([command, '--help'], {});
    assert.equal(help.status, 0, `${command} --help exits 0`);
    assert.ok(
      help.stdout.replace(/\s+/g, ' ').includes(TRACKING_URI_RULE.replace(/\s+/g, ' ')),
      `${command} --help states the rule`,
    );
    assert.doesNotMatch(help.stderr, /unknown command/);
  }
});
