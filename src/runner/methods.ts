/**
 * What the spec side needs to know about each method: its defaults, the schema of `base`,
 * which of its fields only matter at evaluation, and its own resolver (the final check).
 */
import type { BackboneShape } from '../model/clip/presets.js';
import type { MethodName } from '../model/methods/method.js';
import {
  resolveVcpClipConfig,
  VCP_CLIP_DEFAULTS,
  type VcpClipConfigInput,
} from '../model/methods/vcp-clip/config.js';
import {
  resolveVip2ClipConfig,
  VIP2_CLIP_DEFAULTS,
  type Vip2ClipConfigInput,
} from '../model/methods/vip2-clip/config.js';

export interface MethodSpecInfo {
  defaults: Readonly<Record<string, unknown>>;
  /** `$defs` entry of schemas/experiment.schema.json describing `base`. */
  schemaDef: string;
  /** Model fields that change evaluation only: excluded from the training key. */
  evalOnly: readonly string[];
  /** Throws the method's ConfigError ({field, got, expected}) for an invalid config. */
  resolve(config: Record<string, unknown>, backbone: BackboneShape): Record<string, unknown>;
}

export const METHOD_SPECS = {
  'vcp-clip': {
    defaults: VCP_CLIP_DEFAULTS,
    schemaDef: 'vcpClipConfig',
    evalOnly: ['alpha', 'sigma', 'image_score', 'topk'],
    resolve: (config, backbone) => ({
      ...resolveVcpClipConfig(config as VcpClipConfigInput, { backbone }),
    }),
  },
  'vip2-clip': {
    defaults: VIP2_CLIP_DEFAULTS as unknown as Readonly<Record<string, unknown>>,
    schemaDef: 'vip2ClipConfig',
    // top-K and the temperature shape the training loss too; only the smoothing is test-time.
    evalOnly: ['sigma'],
    resolve: (config, backbone) => ({
      ...resolveVip2ClipConfig(config as Vip2ClipConfigInput, { backbone }),
    }),
  },
} as const satisfies Record<MethodName, MethodSpecInfo>;
