// The compiled CLI (dist/) must never run stale: `npm run build` writes dist/.build-stamp with
// a hash of what it compiled (src/**/*.ts and the tsconfig files) and their sizes and mtimes;
// in a checkout that has src/, the bin compares and refuses to start on a mismatch. Sizes and
// mtimes answer in a few ms; only when they differ (an edit, a git checkout) are the contents
// hashed. An installed package ships dist/ without src/: nothing to compare, nothing is read.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const STAMP = join(ROOT, 'dist', '.build-stamp');
const CONFIGS = ['tsconfig.json', 'tsconfig.build.json'];

function tsFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? tsFiles(join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [join(dir, e.name)]
        : [],
  );
}

/** Paths (relative to the package root) of everything the build compiles from, sorted. */
function inputs() {
  return [...tsFiles(join(ROOT, 'src')), ...CONFIGS.map((f) => join(ROOT, f))]
    .filter((f) => existsSync(f))
    .map((f) => relative(ROOT, f).split('\\').join('/'))
    .sort();
}

/** "size:mtime" of each input: the quick comparison. */
function fingerprints(files) {
  return Object.fromEntries(
    files.map((f) => {
      const s = statSync(join(ROOT, f));
      return [f, `${s.size}:${s.mtimeMs}`];
    }),
  );
}

/** sha256 over the inputs' paths and contents: the exact comparison. */
function contentHash(files) {
  const hash = createHash('sha256');
  for (const f of files)
    hash
      .update(`${f}\0`)
      .update(readFileSync(join(ROOT, f)))
      .update('\0');
  return hash.digest('hex');
}

/** Taken before compiling, written after it (so an edit during the build reads as stale). */
export function snapshot() {
  const files = inputs();
  return { hash: contentHash(files), files: fingerprints(files) };
}

export function writeStamp(stamp) {
  writeFileSync(STAMP, `${JSON.stringify(stamp)}\n`);
}

function isCurrent() {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(STAMP, 'utf8'));
  } catch {
    return false;
  }
  const files = inputs();
  const now = fingerprints(files);
  const same =
    files.length === Object.keys(stamp.files ?? {}).length &&
    files.every((f) => stamp.files[f] === now[f]);
  return same || contentHash(files) === stamp.hash;
}

/** Undefined when dist/ may run; else what is wrong and what to do. */
export function buildProblem() {
  const checkout = existsSync(join(ROOT, 'src'));
  const rebuild = `rebuild it with: npm run build   (in ${ROOT})`;
  if (!existsSync(join(ROOT, 'dist', 'cli.js')))
    return checkout
      ? { message: 'the CLI is not built: dist/cli.js is missing', hint: rebuild }
      : {
          message: `dist/cli.js is missing from the installed package at ${ROOT}`,
          hint: 'reinstall vcp-exp',
        };
  if (checkout && !isCurrent())
    return { message: 'the compiled CLI in dist/ is out of date with src/', hint: rebuild };
  return undefined;
}
