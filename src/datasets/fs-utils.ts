import { readdir, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { IMAGE_EXTENSIONS } from './types.js';

/** Names of the sub-directories of dir, sorted; [] if dir does not exist. */
export async function listDirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}

/** Names of the image files in dir (by extension), sorted; [] if dir does not exist. */
export async function listImages(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .filter((name) => (IMAGE_EXTENSIONS as readonly string[]).includes(extname(name).toLowerCase()))
    .sort();
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** File name without its extension. */
export function stem(name: string): string {
  const ext = extname(name);
  return ext ? name.slice(0, -ext.length) : name;
}
