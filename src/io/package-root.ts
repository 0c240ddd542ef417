/** The directory of vcp-exp's package.json: a checkout, or the installed package. */
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

/** src/io/ and dist/io/ are both two levels below the package root. */
export function projectRoot(): string {
  return resolve(fileURLToPath(new URL('../../', import.meta.url)));
}
