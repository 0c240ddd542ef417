/**
 * The bin runs the compiled CLI and never a stale one: a copy of bin/ beside a fake src/ and
 * dist/ shows it running a current build, refusing one older than src/ (with the rebuild
 * command), accepting a touched but unchanged source (content hash), and running an installed
 * package (no src/) without checking. Trial processes started by the compiled CLI run
 * compiled JS; from sources (tests), through tsx.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type * as BuildStamp from '../bin/build-stamp.js';

type BuildStampModule = typeof BuildStamp;

const work = mkdtempSync(join(tmpdir(), 'vcp-bin-'));
after(() => rmSync(work, { recursive: true, force: true }));

function fakeCheckout(): string {
  const root = join(work, `pkg-${Math.random().toString(36).slice(2)}`);
  cpSync('bin', join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'src', 'sub'), { recursive: true });
  mkdirSync(join(root, 'dist'));
  writeFileSync(join(root, 'src', 'cli.ts'), 'export {};\n');
  writeFileSync(join(root, 'src', 'sub', 'x.ts'), 'export const x = 1;\n');
  writeFileSync(join(root, 'tsconfig.json'), '{}\n');
  writeFileSync(join(root, 'tsconfig.build.json'), '{}\n');
  writeFileSync(join(root, 'dist', 'cli.js'), "console.log('compiled cli ran');\n");
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  return root;
}

async function stamp(root: string): Promise<void> {
  const m = (await import(
    pathToFileURL(join(root, 'bin', 'build-stamp.js')).href
  )) as BuildStampModule;
  m.writeStamp(m.snapshot());
}

function runBin(root: string) {
  return spawnSync(process.execPath, [join(root, 'bin', 'vcp-exp.js')], { encoding: 'utf8' });
}

test('a current build runs; a build older than src/ is refused with the rebuild command', async () => {
  const root = fakeCheckout();
  let r = runBin(root);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /out of date with src\/\n {2}hint: rebuild it with: npm run build/);

  await stamp(root);
  r = runBin(root);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'compiled cli ran\n');

  writeFileSync(join(root, 'src', 'sub', 'x.ts'), 'export const x = 2;\n');
  r = runBin(root);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /vcp-exp: the compiled CLI in dist\/ is out of date with src\//);
  assert.equal(r.stdout, '');

  // Back to the built content with a new mtime (e.g. a git checkout): current again.
  writeFileSync(join(root, 'src', 'sub', 'x.ts'), 'export const x = 1;\n');
  utimesSync(join(root, 'src', 'sub', 'x.ts'), new Date(), new Date(Date.now() + 5000));
  assert.equal(runBin(root).status, 0);

  writeFileSync(join(root, 'src', 'new.ts'), 'export {};\n');
  assert.equal(runBin(root).status, 1, 'a new source file makes the build stale');
  rmSync(join(root, 'src', 'new.ts'));
  writeFileSync(join(root, 'tsconfig.build.json'), '{ "compilerOptions": {} }\n');
  assert.equal(runBin(root).status, 1, 'a changed tsconfig makes the build stale');
});

test('an installed package (no src/) runs dist/ unchecked; without dist/ it says to reinstall', () => {
  const root = fakeCheckout();
  rmSync(join(root, 'src'), { recursive: true });
  let r = runBin(root);
  assert.equal(r.status, 0, r.stderr);
  rmSync(join(root, 'dist', 'cli.js'));
  r = runBin(root);
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /dist\/cli\.js is missing from the installed package.*\n {2}hint: reinstall/,
  );
});

test('trial processes of the compiled CLI run compiled JS; from sources they run through tsx', async () => {
  const compiled = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      "const m = await import('./dist/runner/executors/trial-entry.js'); console.log(JSON.stringify(m.trialProcessArgs('job.json')));",
    ],
    { encoding: 'utf8' },
  );
  assert.equal(compiled.status, 0, compiled.stderr);
  const args = JSON.parse(compiled.stdout) as string[];
  assert.equal(args.length, 2);
  assert.match(args[0], /dist\/runner\/trial-main\.js$/);
  const { trialProcessArgs } = await import('../src/runner/executors/trial-entry.js');
  const dev = trialProcessArgs('job.json');
  assert.equal(dev[0], '--import');
  assert.match(dev[1], /tsx/);
  assert.match(dev[2], /src\/runner\/trial-main\.ts$/);
});
