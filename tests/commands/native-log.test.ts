/**
 * The CLI's commands that load the native backend in their own process show none of
 * TensorFlow's C++ start-up lines (src/io/filtered-self.ts), while their output, their errors
 * and exit codes reach the user as before; VCP_EXP_TF_LOG=1 shows the lines (which proves
 * libtensorflow still writes them, so their absence is the filter's doing).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isNativeLogNoise } from '../../src/io/native-log.js';
import { isolatedCache } from '../isolated-cache.js';
import { need } from '../requirements.js';

const CLI = fileURLToPath(new URL('../../bin/vcp-exp.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'vcp-native-log-'));
after(() => rmSync(work, { recursive: true, force: true }));

function cli(args: string[], extra: Record<string, string> = {}) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    VCP_EXP_CACHE: isolatedCache(join(work, 'cache')),
    ...extra,
  };
  if (!('VCP_EXP_TF_LOG' in extra)) delete env.VCP_EXP_TF_LOG;
  delete env.VCP_EXP_STDERR_FILTERED;
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: work, env, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const noiseLines = (stderr: string) => stderr.split('\n').filter(isNativeLogNoise);

test('`vcp-exp backend` on the native backend: its report, exit 0, no TensorFlow start-up lines', (t) => {
  const r = cli(['backend']);
  if (!/^backend: tensorflow /m.test(r.stdout)) {
    need(t, 'native-backend', {
      ok: false,
      reason: `vcp-exp backend said: ${r.stdout}${r.stderr}`,
    });
    return;
  }
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^matMul 1024³: [\d.]+ ms/m);
  assert.deepEqual(noiseLines(r.stderr), [], r.stderr);

  const shown = cli(['backend'], { VCP_EXP_TF_LOG: '1' });
  assert.equal(shown.status, 0, shown.stderr);
  assert.match(shown.stdout, /^backend: tensorflow /m);
  assert.ok(
    noiseLines(shown.stderr).length > 0,
    `VCP_EXP_TF_LOG=1: libtensorflow's start-up lines expected, got stderr: ${shown.stderr}`,
  );
});

test('an error of a native command: its message on stderr, its exit code, no start-up lines', () => {
  const r = cli(['predict', 'nothere.png', '--checkpoint', 'no-checkpoint', '--out', 'maps']);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(
    r.stderr,
    /^vcp-exp: no-checkpoint: not a vcp-exp checkpoint \(missing config\.json\)\n {2}hint: give a directory written by `vcp-exp train`/m,
  );
  assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
  assert.deepEqual(noiseLines(r.stderr), [], r.stderr);
});

test('only commands that may load the native backend start a child: not --version, plan or --backend wasm', () => {
  // Every Node process started appends its pid to a file (NODE_OPTIONS reaches the child too).
  const counter = join(work, 'count-processes.cjs');
  writeFileSync(
    counter,
    "require('node:fs').appendFileSync(process.env.VCP_TEST_PIDS, process.pid + '\\n');\n",
  );
  let runs = 0;
  const processes = (args: string[], extra: Record<string, string> = {}) => {
    const pids = join(work, `pids-${runs++}`);
    const r = cli(args, {
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${counter}`,
      VCP_TEST_PIDS: pids,
      ...extra,
    });
    assert.equal(r.status, 0, r.stderr);
    return { ...r, count: readFileSync(pids, 'utf8').trim().split('\n').length };
  };
  assert.equal(processes(['--version']).count, 1);
  assert.equal(processes(['plan', '--help']).count, 1);
  const wasm = processes(['backend', '--backend', 'wasm']);
  assert.match(wasm.stdout, /^backend: wasm /m);
  assert.equal(wasm.count, 1);
  assert.ok(processes(['backend']).count >= 2, 'backend (auto) runs behind the filter');
  assert.equal(processes(['backend'], { VCP_EXP_TF_LOG: '1' }).count, 1, 'unless told not to');
});
