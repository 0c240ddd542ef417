/**
 * `vcp-exp import vcp-clip`: a checkpoint of the authors' train.py (.pth) → a vcp-exp checkpoint
 * directory that `predict` and the runner load like a trained one. The .pth is read without
 * PyTorch and without executing it (io/torch-zip); its weights are checked against the CLIP they
 * will run on (widths, text depth, the feature layers) before anything is written.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../../../errors.js';
import { readTorchCheckpoint } from '../../../io/torch-zip.js';
import {
  CHECKPOINT_CONFIG,
  CHECKPOINT_FORMAT,
  packageVersion,
  writeCheckpointFiles,
  type CheckpointConfig,
} from '../../checkpoint.js';
import { gridSize } from '../../clip/config.js';
import { BACKBONE_ALIASES, KNOWN_BACKBONES } from '../../clip/presets.js';
import { inspectClipCheckpoint, weightsHash, WEIGHTS_FILE } from '../../clip/weights.js';
import { backboneDir } from '../../load.js';
import { resolveVcpClipConfig, VCP_CLIP_DEFAULTS } from './config.js';
import { checkAgainstClip, fromPublicCheckpoint } from './public-checkpoint.js';

export const PUBLIC_CODE = 'github.com/xiaozhen228/VCP-CLIP';

const UNRECORDED = [
  'seed',
  'lr',
  'lr_tau',
  'betas',
  'dtp_dropout',
  'alpha',
  'sigma',
  'image_score',
  'topk',
];

export interface ImportVcpClipOptions {
  /** The .pth the public train.py saved. */
  pth: string;
  /** The CLIP it was trained on: a checkpoint directory, a known name or a pulled hub id. */
  clip: string;
  /** 1-based vision blocks of the per-layer maps (default: VCP-CLIP's [6, 12, 18, 24]). */
  layers?: readonly number[];
  /** Input size S (default 518, the paper's). */
  imageSize?: number;
  out: string;
}

export interface ImportedCheckpoint {
  dir: string;
  config: CheckpointConfig;
  tensors: number;
  warnings: string[];
  /** What the checkpoint determined, for the import command's summary line. */
  summary: string;
}

/**
 * The dict a torch.save file holds (read by io/torch-zip: nothing executed), tensors decoded:
 * the one place the importer touches the .pth reader.
 */
export function readPublicState(file: string): Promise<unknown> {
  return readTorchCheckpoint(file);
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The name the method config records: a known architecture, else the hub id or absolute directory. */
function backboneName(clip: string): string {
  if (clip in KNOWN_BACKBONES) return clip;
  if (clip in BACKBONE_ALIASES) return BACKBONE_ALIASES[clip];
  if (existsSync(clip) && statSync(clip).isDirectory()) return resolve(clip);
  return clip;
}

export async function importVcpClip(options: ImportVcpClipOptions): Promise<ImportedCheckpoint> {
  const { pth, out } = options;
  const imported = fromPublicCheckpoint(await readPublicState(pth), pth);

  const dir = backboneDir(options.clip);
  const summary = await inspectClipCheckpoint(dir);
  const { vision, text, projectionDim } = summary.config;
  const clipName = backboneName(options.clip);
  checkAgainstClip(
    imported,
    {
      textWidth: text.width,
      textLayers: text.layers,
      visionWidth: vision.width,
      visionLayers: vision.layers,
      embedDim: projectionDim,
    },
    pth,
    clipName,
  );

  const count = imported.linearLayers;
  const defaults = VCP_CLIP_DEFAULTS.layers;
  const layers = options.layers ?? (defaults.length === count ? defaults : undefined);
  if (!layers) {
    throw new UserError(
      `${pth}: has ${count} per-layer maps (trainable_linearlayer.fc.0..${count - 1}), VCP-CLIP's default layers are ${defaults.length}`,
      {
        hint: `give the ${count} vision blocks it was trained on, e.g. --layers ${Array.from({ length: count }, (_, i) => Math.round(((i + 1) * vision.layers) / count)).join(',')}`,
      },
    );
  }
  const badLayers = layers.filter((l) => !Number.isInteger(l) || l < 1 || l > vision.layers);
  if (layers.length !== count || badLayers.length > 0 || new Set(layers).size !== layers.length) {
    throw new UserError(
      `--layers: got ${layers.join(',')}, expected ${count} distinct 1-based vision blocks in 1..${vision.layers} (${pth} has ${count} per-layer maps; ${clipName} has ${vision.layers} vision blocks)`,
    );
  }
  const imageSize = options.imageSize ?? VCP_CLIP_DEFAULTS.image_size;
  gridSize(vision, imageSize, '--image-size');

  const config = resolveVcpClipConfig(
    { ...imported.config, backbone: clipName, image_size: imageSize, layers: [...layers] },
    {
      source: `importing ${pth}`,
      backbone: {
        visionLayers: vision.layers,
        visionWidth: vision.width,
        patchSize: vision.patchSize,
        textWidth: text.width,
        embedDim: projectionDim,
      },
    },
  );
  if (existsSync(out) && !existsSync(join(out, CHECKPOINT_CONFIG))) {
    throw new UserError(`--out ${out}: exists and is not a vcp-exp checkpoint`, {
      hint: 'choose a new directory (an existing checkpoint there is replaced)',
    });
  }
  // What the weights and the public code fix; training-only (seed, learning rates, betas,
  // dropout) and evaluation-only fields (alpha, sigma, score) stay open for whoever loads it.
  const recorded = Object.fromEntries(
    Object.entries(config).filter(([field]) => !UNRECORDED.includes(field)),
  );
  const checkpoint: CheckpointConfig = {
    format: CHECKPOINT_FORMAT,
    method: 'vcp-clip',
    config: JSON.parse(JSON.stringify(recorded)) as Record<string, unknown>,
    clip: { sha256: await weightsHash(join(dir, WEIGHTS_FILE)), name: clipName },
    vcp_exp_version: packageVersion(),
    created: new Date().toISOString(),
    info: {
      imported_from: resolve(pth),
      pth_sha256: await sha256(pth),
      public_code: PUBLIC_CODE,
    },
  };
  await writeCheckpointFiles(out, imported.tensors, checkpoint);
  return {
    dir: out,
    config: checkpoint,
    tensors: imported.tensors.size,
    warnings: imported.warnings,
    summary: `n_ctx ${String(config.n_ctx)}, deep prompts ${config.dtp ? String(config.deep_prompt_len) : 'none'}`,
  };
}
