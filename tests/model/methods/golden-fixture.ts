/** What the methods' golden fixtures share: the committed-files check and raw → tf tensors. */
import { existsSync } from 'node:fs';
import type { RawTensor } from '../../../src/io/safetensors.js';
import { tf } from '../../../src/model/tf.js';
import type { Tensor } from '../../../src/model/tf.js';

/**
 * Committed fixtures are not optional: a missing one throws (the test file fails) rather than
 * skipping. Returns null so that callers' `{ skip: missing }` never skips.
 */
export function requireCommittedFixtures(files: readonly string[], script: string): null {
  for (const f of files) {
    if (!existsSync(f))
      throw new Error(
        `committed fixture ${f} is missing: restore it from git or regenerate it with ${script} (python/README.md)`,
      );
  }
  return null;
}

export function tensorOf(raw: RawTensor): Tensor {
  return tf.tensor(
    raw.data,
    raw.shape,
    raw.dtype === 'I32' || raw.dtype === 'I64' ? 'int32' : 'float32',
  );
}
