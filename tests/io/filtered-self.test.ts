/**
 * A command run behind the stderr filter (src/io/filtered-self.ts), through a stand-in CLI
 * (filtered-self-fixture.ts): TensorFlow's start-up lines are gone, everything else arrives
 * unchanged and as it is written (a partial line is not held for its newline), the last line
 * without newline is kept, stdin and stdout are the user's, the exit code and a signal are
 * reproduced, signals reach the child, and VCP_EXP_TF_LOG=1 turns the filter off.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const FIXTURE = fileURLToPath(new URL('filtered-self-fixture.ts', import.meta.url));
const args = (mode: string) => ['--import', 'tsx', FIXTURE, mode];
const env = (extra: Record<string, string> = {}) => {
  const e: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete e.VCP_EXP_STDERR_FILTERED;
  delete e.VCP_EXP_STDERR_TTY;
  if (!('VCP_EXP_TF_LOG' in extra)) delete e.VCP_EXP_TF_LOG;
  return e;
};

test('noise is dropped, the rest and the exit code pass through, the last partial line too', () => {
  const r = spawnSync(process.execPath, args('noise'), { env: env(), encoding: 'utf8' });
  assert.equal(r.stdout, 'stdout line\n');
  assert.equal(
    r.stderr,
    'kept 1\nW0000 00:00:1.5 1 x.cc:2] a TensorFlow warning\nlast, no newline',
  );
  assert.equal(r.status, 7);
});

test('VCP_EXP_TF_LOG=1 runs the command in the process itself, noise and all', () => {
  const r = spawnSync(process.execPath, args('noise'), {
    env: env({ VCP_EXP_TF_LOG: '1' }),
    encoding: 'utf8',
  });
  assert.match(r.stderr, /^WARNING: All log messages before absl::InitializeLog\(\)/);
  assert.match(r.stderr, /port\.cc:153\] oneDNN custom operations are on\./);
  assert.equal(r.status, 7);
});

test('stderr arrives as it is written, stdin is the child’s', async () => {
  const parent = spawn(process.execPath, args('prompt'), { env: env() });
  let err = '';
  const seen = (text: string) =>
    new Promise<void>((resolve) => {
      const check = () => err.includes(text) && resolve();
      parent.stderr.on('data', (c: Buffer) => {
        err += c.toString();
        check();
      });
      check();
    });
  await seen('progress 50%'); // before any newline: not held back by the filter
  parent.stdin.end('go\n');
  const code = await new Promise((resolve) => parent.on('close', resolve));
  assert.equal(err, 'progress 50% then go\n');
  assert.equal(code, 0);
});

/** Starts the fixture in `wait` mode; resolves once its child has said its pid. */
async function waiting() {
  const parent = spawn(process.execPath, args('wait'), { env: env() });
  let err = '';
  parent.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const childPid = await new Promise<number>((resolve) => {
    let out = '';
    parent.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /ready (\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    });
  });
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    parent.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { parent, childPid, ended, err: () => err };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('SIGTERM reaches the child, and the parent ends by the same signal', async () => {
  const { parent, childPid, ended } = await waiting();
  assert.notEqual(childPid, parent.pid, 'the command runs in a child');
  parent.kill('SIGTERM');
  assert.deepEqual(await ended, { code: null, signal: 'SIGTERM' });
  assert.ok(!alive(childPid), 'the child is gone');
});

test('SIGINT reaches the child; its exit code (130) and last words come back', async () => {
  const { parent, ended, err } = await waiting();
  parent.kill('SIGINT');
  assert.deepEqual(await ended, { code: 130, signal: null });
  assert.equal(err(), 'child: interrupted\n');
});

test('the child knows whether the user’s stderr is a terminal', () => {
  const r = spawnSync(process.execPath, args('tty'), { env: env(), encoding: 'utf8' });
  assert.equal(r.stdout, 'stderr is a terminal: false\n', 'a pipe here');
  // What the parent passes on when its own stderr is a terminal (a pty is not at hand here).
  const told = spawnSync(process.execPath, args('tty'), {
    env: { ...env(), VCP_EXP_STDERR_FILTERED: '1', VCP_EXP_STDERR_TTY: '1' },
    encoding: 'utf8',
  });
  assert.equal(told.stdout, 'stderr is a terminal: true\n');
});
