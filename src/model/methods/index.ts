/**
 * Registry of the zero-shot methods a spec's `method:` can name. Factories are plain
 * functions: nothing is built or registered at import time.
 */
import { UserError } from '../../errors.js';
import type { MethodContext, MethodFactory, MethodName, ZeroShotMethod } from './method.js';
import { METHOD_NAMES } from './method.js';
import { createVcpClip } from './vcp-clip/model.js';
import { createVip2Clip } from './vip2-clip/model.js';

export const METHODS = {
  'vcp-clip': createVcpClip,
  'vip2-clip': createVip2Clip,
} satisfies Record<MethodName, MethodFactory>;

/** Builds the named method; an unknown name is a UserError listing the known ones. */
export function createMethod(
  name: string,
  config: unknown,
  context: MethodContext,
): ZeroShotMethod {
  if (!(METHOD_NAMES as readonly string[]).includes(name)) {
    throw new UserError(`method: got "${name}", expected one of ${METHOD_NAMES.join(', ')}`);
  }
  return METHODS[name as MethodName](config, context);
}

export type { FrozenFeatures, MethodContext, MethodOutput, ZeroShotMethod } from './method.js';
