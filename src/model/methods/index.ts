/**
 * Registry of the zero-shot methods a spec's `method:` can name: one line per method, its
 * definition (schema, checks across fields, factory loaded on demand). Adding a method = a
 * schema in schemas/methods/, a folder here, and a line below (docs/architecture.md).
 * Importing this module builds nothing and does not load tfjs.
 */
import { UserError } from '../../errors.js';
import { suggestValue } from '../../io/wording.js';
import type { MethodDefinition } from './config.js';
import type { MethodContext, ZeroShotMethod } from './method.js';
import { VCP_CLIP } from './vcp-clip/config.js';
import { VIP2_CLIP } from './vip2-clip/config.js';

export const METHODS = {
  'vcp-clip': VCP_CLIP,
  'vip2-clip': VIP2_CLIP,
} as const satisfies Record<string, MethodDefinition<object>>;

export type MethodName = keyof typeof METHODS;
export const METHOD_NAMES = Object.keys(METHODS) as MethodName[];

export function isMethodName(name: unknown): name is MethodName {
  return typeof name === 'string' && Object.hasOwn(METHODS, name);
}

/** "got "vcp-clipp", expected one of vcp-clip; did you mean "vcp-clip"?" */
export function unknownMethodMessage(name: unknown): string {
  const guess = typeof name === 'string' ? suggestValue(name, METHOD_NAMES) : '';
  return `got ${JSON.stringify(name)}, expected one of ${METHOD_NAMES.join(', ')}${guess}`;
}

/** The named method's definition; an unknown name is a UserError listing the known ones. */
export function methodDefinition(name: string): MethodDefinition {
  if (!isMethodName(name)) throw new UserError(`method: ${unknownMethodMessage(name)}`);
  return METHODS[name] as unknown as MethodDefinition;
}

/** Builds the named method (its factory validates `config` against the CLIP in `context`). */
export async function createMethod(
  name: string,
  config: unknown,
  context: MethodContext,
): Promise<ZeroShotMethod> {
  const factory = await methodDefinition(name).load();
  return factory(config, context);
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
