/**
 * One optimiser step for any ZeroShotMethod, from its OptimizerSpec: an Adam per learning-rate
 * group, gradients of the loss w.r.t. the method's parameters only (CLIP is never touched).
 */
import { tf } from '../tf.js';
import type { Variable } from '../tf.js';
import type { ZeroShotMethod } from './method.js';

export interface MethodOptimizer {
  /** Computes the loss and its gradients, applies one update per group; returns the loss value. */
  step(loss: () => tf.Scalar): number;
  /** The loss value and its gradients keyed by variable name (no update; the caller disposes the grads). */
  gradients(loss: () => tf.Scalar): { value: number; grads: tf.NamedTensorMap };
  /** One update per group from gradients keyed by variable name (e.g. accumulated over micro-batches). */
  apply(grads: tf.NamedTensorMap): void;
  dispose(): void;
}

export function createOptimizer(method: ZeroShotMethod): MethodOptimizer {
  const spec = method.optimizer();
  const params = method.parameters();
  const seen = new Set<string>();
  const groups = spec.groups.map((group) => {
    const vars = group.params.map((name) => {
      const v = params.get(name);
      if (!v)
        throw new Error(
          `${method.name}: optimizer group ${group.name} names an unknown parameter ${name}`,
        );
      if (seen.has(name))
        throw new Error(`${method.name}: parameter ${name} is in two optimizer groups`);
      seen.add(name);
      return v;
    });
    return { vars, adam: tf.train.adam(group.lr, spec.beta1, spec.beta2, spec.epsilon) };
  });
  const missing = [...params.keys()].filter((n) => !seen.has(n));
  if (missing.length > 0)
    throw new Error(`${method.name}: parameters in no optimizer group: ${missing.join(', ')}`);
  const all: Variable[] = groups.flatMap((g) => g.vars);

  const gradients = (loss: () => tf.Scalar) => {
    const { value, grads } = tf.variableGrads(loss, all);
    const result = value.dataSync()[0];
    value.dispose();
    return { value: result, grads };
  };
  const apply = (grads: tf.NamedTensorMap) => {
    for (const { vars, adam } of groups) {
      // A parameter the loss does not depend on has no gradient and is left as it is.
      const named = vars
        .filter((v) => grads[v.name] !== undefined)
        .map((v) => ({ name: v.name, tensor: grads[v.name] }));
      if (named.length > 0) adam.applyGradients(named);
    }
  };
  return {
    gradients,
    apply,
    step(loss) {
      const { value, grads } = gradients(loss);
      apply(grads);
      tf.dispose(grads);
      return value;
    },
    dispose() {
      for (const { adam } of groups) adam.dispose();
    },
  };
}
