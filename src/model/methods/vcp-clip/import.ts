/**
 * `vcp-exp import vcp-clip`: a checkpoint of the authors' train.py (.pth) → a vcp-exp checkpoint
 * directory that `predict` and the runner load like a trained one. The .pth is read without
 * PyTorch and without executing it (io/torch-zip); its weights are checked against the CLIP they
 * will run on (widths, text depth, the feature layers) before anything is written.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { UserError } from '../../../errors.js';
import { PickleDict, type PickleValue } from '../../../io/pickle.js';
import { isTorchTensor, TorchZip } from '../../../io/torch-zip.js';
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
}

/** A tensor's little-endian bytes as float32 (floats widened exactly or rounded from F64). */
function floatData(dtype: string, bytes: Uint8Array): Float32Array | null {
  const aligned = bytes.slice(); // own buffer: aligned typed-array views
  switch (dtype) {
    case 'F32':
      return new Float32Array(aligned.buffer);
    case 'F64':
      return Float32Array.from(new Float64Array(aligned.buffer));
    case 'BF16':
      return new Float32Array(
        Uint32Array.from(new Uint16Array(aligned.buffer), (h) => h << 16).buffer,
      );
    case 'F16':
      return Float32Array.from(new Uint16Array(aligned.buffer), (h) => {
        const sign = h & 0x8000 ? -1 : 1;
        const exponent = (h >> 10) & 0x1f;
        const fraction = h & 0x3ff;
        if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
        if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
        return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
      });
    default:
      return null;
  }
}

const PTH_HINT = "give the .pth file the public train.py saved (torch.save's zip format)";

/** A missing file, a directory, or bytes that are neither a zip nor a pickle: said as such. */
async function checkLooksLikePth(file: string): Promise<void> {
  const info = await stat(file).catch(() => null);
  if (!info) throw new UserError(`${file}: no such file`, { hint: PTH_HINT });
  if (!info.isFile()) throw new UserError(`${file}: not a file`, { hint: PTH_HINT });
  const handle = await open(file, 'r');
  const head = Buffer.alloc(4);
  try {
    await handle.read(head, 0, 4, 0);
  } finally {
    await handle.close();
  }
  const zip = head[0] === 0x50 && head[1] === 0x4b; // "PK"
  const pickle = head[0] === 0x80; // PROTO: torch.save's legacy format (refused by the reader, with how to convert)
  if (!zip && !pickle)
    throw new UserError(
      `${file}: not a PyTorch checkpoint: neither torch.save's zip format nor its legacy pickle (${extname(file) || 'no extension'}, ${info.size} bytes)`,
      { hint: PTH_HINT },
    );
}

/**
 * The dict a torch.save file holds (read by io/torch-zip: nothing executed), with tensors as
 * StateTensors: the one place the importer touches the .pth reader.
 */
export async function readPublicState(file: string): Promise<unknown> {
  await checkLooksLikePth(file);
  const archive = await TorchZip.open(file);
  try {
    const converted = new Map<object, unknown>(); // shared (memoised) containers stay shared
    const convert = async (value: PickleValue): Promise<unknown> => {
      if (isTorchTensor(value)) {
        const data = floatData(value.dtype, await archive.bytes(value));
        return { kind: 'tensor', shape: [...value.shape], data: data ?? new Int32Array(0) };
      }
      if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return value;
      if (converted.has(value)) return converted.get(value);
      if (value instanceof PickleDict) {
        const map = new Map<unknown, unknown>();
        converted.set(value, map);
        for (const [k, v] of value) map.set(k, await convert(v));
        return map;
      }
      if (Array.isArray(value)) {
        const list: unknown[] = [];
        converted.set(value, list);
        for (const v of value as PickleValue[]) list.push(await convert(v));
        return list;
      }
      return value;
    };
    return await convert(archive.root);
  } finally {
    await archive.close();
  }
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
  };
}
