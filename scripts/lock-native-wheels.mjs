#!/usr/bin/env node
// Writes the hashes of the hash-locked requirement files the native backend is built from
// (assets/native/requirements-*.txt): for every `name==version` line, PyPI's sha256 of each
// Linux x86_64 wheel of that version, as `--hash=sha256:…` options pip checks with
// --require-hashes. Comments and pins are kept; only the hash options are rewritten.
// Usage: node scripts/lock-native-wheels.mjs [--check]   (--check: exit 1 when a file is stale)
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const DIR = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'assets', 'native');
const check = process.argv.includes('--check');
const LINUX_X86_64 = /-(manylinux[^-]*_x86_64|linux_x86_64)\.whl$/;

/** PyPI's sha256 of every Linux x86_64 wheel of name==version, sorted. */
async function hashesOf(name, version) {
  const response = await fetch(`https://pypi.org/pypi/${name}/json`);
  if (!response.ok) throw new Error(`PyPI: ${name}: HTTP ${response.status}`);
  const files = (await response.json()).releases[version];
  if (!files) throw new Error(`PyPI has no ${name}==${version}`);
  const hashes = files
    .filter((f) => f.packagetype === 'bdist_wheel' && LINUX_X86_64.test(f.filename) && !f.yanked)
    .map((f) => f.digests.sha256)
    .sort();
  if (hashes.length === 0) throw new Error(`PyPI has no Linux x86_64 wheel of ${name}==${version}`);
  return hashes;
}

let stale = 0;
for (const file of readdirSync(DIR).filter((f) => /^requirements-.*\.txt$/.test(f))) {
  const path = join(DIR, file);
  const before = readFileSync(path, 'utf8');
  const out = [];
  // A requirement and its `\`-continued hash lines form one logical line.
  for (const logical of before.replace(/\\\n/g, ' ').split('\n')) {
    const pin = /^([A-Za-z0-9._-]+)==([^\s;]+)/.exec(logical);
    if (!pin) {
      out.push(logical);
      continue;
    }
    const hashes = await hashesOf(pin[1], pin[2]);
    out.push(
      [`${pin[1]}==${pin[2]}`, ...hashes.map((h) => `    --hash=sha256:${h}`)].join(' \\\n'),
    );
  }
  const after = out.join('\n');
  if (after === before) continue;
  stale++;
  if (check) console.error(`${file} is out of date: run node scripts/lock-native-wheels.mjs`);
  else {
    writeFileSync(path, after);
    console.log(`wrote ${path}`);
  }
}
if (check && stale > 0) process.exit(1);
