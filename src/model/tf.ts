/**
 * The one place tfjs is imported from. The union package registers every gradient; the
 * native addon (@tensorflow/tfjs-node) registers itself on this same tfjs-core instance.
 */
import * as tf from '@tensorflow/tfjs';

// The cpu backend greets Node users with a banner on first use; backend.ts prints its own hint.
tf.env().set('IS_TEST', true);

export { tf };
export type { Tensor, Tensor1D, Tensor2D, Tensor3D, Tensor4D, Variable, Rank } from '@tensorflow/tfjs';
