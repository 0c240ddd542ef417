/**
 * What a spec's `backbone` names: a known OpenAI architecture, a CLIP shipped with the
 * package (`tiny-clip`, the quickstart's), or a Hugging Face CLIP checkpoint directory
 * (relative to the spec file that wrote it). Gives the shapes the cross-field checks need and
 * the weights identity that goes into trial and feature keys.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveWeightsDir } from './clip/cache.js';
import { parseClipConfig } from './clip/config.js';
import { sha256File, weightsHash } from './clip/weights.js';
import { BACKBONE_ALIASES, KNOWN_BACKBONES, type BackboneShape } from './clip/presets.js';

export type BackboneInfo =
  | { kind: 'known'; name: keyof typeof KNOWN_BACKBONES; shape: BackboneShape }
  | { kind: 'checkpoint'; dir: string; shape: BackboneShape; textContext: number };

/**
 * CLIP checkpoints shipped with the package (assets/clip/<name>): name → directory. The tiny
 * random-weights CLIP lets the quickstart and the tests run without downloading anything.
 */
export const BUNDLED_BACKBONES: Readonly<Record<string, string>> = Object.freeze({
  // src/model/ and dist/model/ are both two levels below the package root.
  'tiny-clip': fileURLToPath(new URL('../../assets/clip/tiny-clip', import.meta.url)),
});

/**
 * The checkpoint directory of a backbone as a trial config holds it (a directory, a bundled
 * CLIP, a known architecture or its hub id: pulled into the cache); throws a UserError naming
 * the `vcp-exp weights pull` command when the weights are not downloaded.
 */
export function backboneDir(backbone: string): string {
  if (BUNDLED_BACKBONES[backbone]) return BUNDLED_BACKBONES[backbone];
  if (existsSync(backbone) && statSync(backbone).isDirectory()) return backbone;
  const hubId = Object.entries(BACKBONE_ALIASES).find(([, name]) => name === backbone)?.[0];
  return resolveWeightsDir(hubId ?? backbone);
}

/**
 * Resolves `backbone` as written in `file`; returns a message (got/expected) when it is
 * neither a known name nor a readable checkpoint directory.
 */
export function resolveBackbone(backbone: string, file: string): BackboneInfo | { error: string } {
  const known = (backbone in KNOWN_BACKBONES ? backbone : BACKBONE_ALIASES[backbone]) as
    keyof typeof KNOWN_BACKBONES | undefined;
  if (known) return { kind: 'known', name: known, shape: KNOWN_BACKBONES[known] };
  const dir = BUNDLED_BACKBONES[backbone] ?? resolve(dirname(file), backbone);
  const names = [
    ...Object.keys(KNOWN_BACKBONES),
    ...Object.keys(BACKBONE_ALIASES),
    ...Object.keys(BUNDLED_BACKBONES),
  ].join(', ');
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    return {
      error: `got ${JSON.stringify(backbone)}, expected a known backbone (${names}) or a CLIP checkpoint directory (no directory at ${dir})`,
    };
  }
  const configFile = join(dir, 'config.json');
  try {
    const config = parseClipConfig(JSON.parse(readFileSync(configFile, 'utf8')), configFile);
    const shape: BackboneShape = {
      visionLayers: config.vision.layers,
      visionWidth: config.vision.width,
      patchSize: config.vision.patchSize,
      textWidth: config.text.width,
      embedDim: config.projectionDim,
    };
    return { kind: 'checkpoint', dir, shape, textContext: config.text.contextLength };
  } catch (error) {
    return {
      error: `got ${JSON.stringify(backbone)}, expected a Hugging Face CLIP checkpoint directory: ${(error as Error).message}`,
    };
  }
}

/** Files below this size are hashed directly; larger ones through the model's remembered hash. */
const SMALL_WEIGHTS = 64 << 20;

/**
 * Identity of the weights: `openai/<name>` for the known architectures (the released
 * weights), `sha256:<first 16 hex>` of model.safetensors for a checkpoint directory, so a
 * moved or renamed directory keeps its trial ids.
 */
export async function weightsIdentity(info: BackboneInfo): Promise<string> {
  if (info.kind === 'known') return `openai/${info.name}`;
  const file = join(info.dir, 'model.safetensors');
  if (!existsSync(file)) return `dir:${info.dir}`;
  const sha =
    statSync(file).size < SMALL_WEIGHTS ? await sha256File(file) : await weightsHash(file);
  return `sha256:${sha.slice(0, 16)}`;
}
