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

/** What `vcp-exp import <method>` needs: the authors' .pth, the CLIP it ran on, where to write. */
export interface PublicImportOptions {
  pth: string;
  clip: string;
  layers?: readonly number[];
  imageSize?: number;
  out: string;
}

export interface PublicImportResult {
  dir: string;
  tensors: number;
  warnings: string[];
  config: { config: Record<string, unknown>; clip: { name: string; sha256: string } };
  /** What the checkpoint determined, for the command's summary line (e.g. "n_ctx 2, deep prompts 1"). */
  summary: string;
}

/** Methods whose authors' checkpoints can be imported, each loaded on demand. */
export const PUBLIC_IMPORTERS: Partial<
  Record<MethodName, () => Promise<(options: PublicImportOptions) => Promise<PublicImportResult>>>
> = {
  'vcp-clip': async () => (await import('./vcp-clip/import.js')).importVcpClip,
  'vip2-clip': async () => (await import('./vip2-clip/import.js')).importVip2Clip,
};

export type { FrozenFeatures, MethodContext, MethodOutput, ZeroShotMethod } from './method.js';
