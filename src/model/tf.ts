/**
 * The one place tfjs is imported from. The union package registers every gradient; the
 * native addon (@tensorflow/tfjs-node) registers itself on this same tfjs-core instance.
 */
import * as tf from '@tensorflow/tfjs';

// The cpu backend greets Node users with a banner on first use; backend.ts prints its own hint.
// PROD silences it; IS_TEST would too, but it also turns on tfjs's per-kernel leak check, which
// wrongly fails every gradient through a fused op on tfjs-node ("internal memory leak").
tf.env().set('PROD', true);

export { tf };
export type {
  Tensor,
  Tensor1D,
  Tensor2D,
  Tensor3D,
  Tensor4D,
  Variable,
  Rank,
} from '@tensorflow/tfjs';
