/**
 * The one place tfjs is imported from. The union package registers every gradient; the
 * native addon (@tensorflow/tfjs-node) registers itself on this same tfjs-core instance.
 */
import { createRequire } from 'node:module';
import type * as tfjs from '@tensorflow/tfjs';

// Required, not imported: an ESM import of this CommonJS bundle makes Node lex it and the
// packages it re-exports for their export names, ~0.3 s of every process's start-up.
// Source maps (on under tsx) off meanwhile: tfjs's bundles point to 16 MB of maps that Node
// would read and parse on load (~0.15 s), only to map stack frames inside tfjs itself.
// (process.sourceMapsEnabled exists from Node 20.7; older Nodes keep their setting.)
const sourceMaps = process.sourceMapsEnabled as boolean | undefined;
if (sourceMaps !== undefined) process.setSourceMapsEnabled(false);
const tf = createRequire(import.meta.url)('@tensorflow/tfjs') as typeof tfjs;
if (sourceMaps !== undefined) process.setSourceMapsEnabled(sourceMaps);

// The cpu backend greets Node users with a banner on first use; backend.ts prints its own hint.
// PROD silences it; IS_TEST would too, but it also turns on tfjs's per-kernel leak check, which
// wrongly fails every gradient through a fused op on tfjs-node ("internal memory leak").
tf.env().set('PROD', true);

export { tf };

/**
 * Hands a new tensor's values to the backend now. tfjs-node keeps the JS array of a tensor made
 * from values until the tensor's first use, so weights converted at load would otherwise sit
 * in memory twice (JS and TensorFlow) until the first forward. Other backends copy on creation.
 */
export function materialize<T extends tfjs.Tensor>(tensor: T): T {
  const backend = tf.backend() as { getInputTensorIds?: (tensors: tfjs.Tensor[]) => unknown };
  backend.getInputTensorIds?.([tensor]);
  return tensor;
}

/** The tfjs types written as `tf.X` (the const above holds only the values). */
// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace tf {
  export type NamedTensorMap = tfjs.NamedTensorMap;
  export type Scalar = tfjs.Scalar;
  export type Tensor<R extends tfjs.Rank = tfjs.Rank> = tfjs.Tensor<R>;
  export type Tensor1D = tfjs.Tensor1D;
  export type Tensor2D = tfjs.Tensor2D;
  export type Tensor3D = tfjs.Tensor3D;
  export type Tensor4D = tfjs.Tensor4D;
  export type TensorContainer = tfjs.TensorContainer;
  export type Variable<R extends tfjs.Rank = tfjs.Rank> = tfjs.Variable<R>;
}
export type {
  Tensor,
  Tensor1D,
  Tensor2D,
  Tensor3D,
  Tensor4D,
  Variable,
  Rank,
} from '@tensorflow/tfjs';
