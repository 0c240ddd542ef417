/**
 * How to start Node on one of our modules in a new process: compiled `.js` runs under plain
 * Node; a `.ts` module (the code runs from sources: tests, development) runs through tsx,
 * a development dependency resolved only then.
 */
import { fileURLToPath } from 'node:url';

/** `node <these arguments>` runs the module at `url` (a file: URL of a .js or .ts file). */
export function nodeArgsFor(url: URL): string[] {
  const file = fileURLToPath(url);
  return file.endsWith('.ts') ? ['--import', import.meta.resolve('tsx'), file] : [file];
}

/** The module next to `here` (an import.meta.url) named `name`, with here's extension. */
export function sibling(here: string, name: string): URL {
  return new URL(`${name}.${here.endsWith('.ts') ? 'ts' : 'js'}`, here);
}
