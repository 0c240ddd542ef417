/**
 * Trained-method checkpoints: a directory with `model.safetensors` (the method's learnable
 * tensors under their checkpoint names, float32) and `config.json` (method name, its config,
 * the CLIP weights it was trained on, vcp-exp version, creation time). Written to a temporary
 * directory and renamed into place, so a crash never leaves half a checkpoint. config.json
 * records the sha256 of model.safetensors: loading refuses a weights file changed or damaged
 * since it was written (CorruptCheckpointError), then checks the method, its config and the
 * CLIP weights hash before any tensor is assigned.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { readSafetensors, writeSafetensors, type RawTensor } from '../io/safetensors.js';
import type { ZeroShotMethod } from './methods/method.js';
import { tf } from './tf.js';
import {
  CHECKPOINT_CONFIG,
  CHECKPOINT_FORMAT,
  CHECKPOINT_WEIGHTS,
  LEGACY_CONFIG_VALUES,
} from './checkpoint-format.js';

export {
  CHECKPOINT_CONFIG,
  CHECKPOINT_FORMAT,
  CHECKPOINT_WEIGHTS,
  LEGACY_CONFIG_VALUES,
} from './checkpoint-format.js';

/** Fields that only change evaluation: a checkpoint serves every value of them. */
export const EVAL_ONLY_FIELDS = ['alpha', 'sigma', 'image_score', 'topk'] as const;

export interface CheckpointConfig {
  format: typeof CHECKPOINT_FORMAT;
  method: string;
  /** The method's resolved config (a converter may write a partial one: it is resolved on load). */
  config: Record<string, unknown>;
  clip: { sha256: string; name: string };
  vcp_exp_version: string;
  created: string;
  /** sha256 of model.safetensors as written (absent in checkpoints converted by older tools). */
  weights_sha256?: string;
  /** Free-form provenance (trial id, training losses, converted from …). */
  info?: Record<string, unknown>;
}

/** A checkpoint whose files are damaged or do not match their recorded hash. */
export class CorruptCheckpointError extends UserError {
  override name = 'CorruptCheckpointError';
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface LoadedCheckpoint {
  dir: string;
  config: CheckpointConfig;
  tensors: Map<string, RawTensor>;
}

/** The version of vcp-exp that writes a checkpoint. */
export function packageVersion(): string {
  const file = new URL('../../package.json', import.meta.url);
  return existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
    : 'unknown';
}

/** Writes the method's parameters and config to `dir` atomically (replacing an existing checkpoint). */
export async function saveCheckpoint(
  dir: string,
  method: ZeroShotMethod,
  clip: { sha256: string; name: string },
  info?: Record<string, unknown>,
): Promise<CheckpointConfig> {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, v] of method.parameters())
    tensors.set(name, { shape: [...v.shape], data: v.dataSync() as Float32Array });
  const config: CheckpointConfig = {
    format: CHECKPOINT_FORMAT,
    method: method.name,
    config: JSON.parse(JSON.stringify(method.config)) as Record<string, unknown>,
    clip,
    vcp_exp_version: packageVersion(),
    created: new Date().toISOString(),
    ...(info ? { info } : {}),
  };
  await writeCheckpointFiles(dir, tensors, config);
  return config;
}

/** Low-level atomic write of a checkpoint directory (also used by tests and converters' checks). */
export async function writeCheckpointFiles(
  dir: string,
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
  config: CheckpointConfig,
): Promise<void> {
  await mkdir(dirname(dir), { recursive: true });
  const temp = join(
    dirname(dir),
    `.${basename(dir)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
  await mkdir(temp);
  try {
    await writeSafetensors(join(temp, CHECKPOINT_WEIGHTS), tensors, {
      metadata: { format: 'pt', method: config.method },
    });
    // Hashed as it landed on disk.
    config.weights_sha256 = sha256Hex(await readFile(join(temp, CHECKPOINT_WEIGHTS)));
    await writeFile(join(temp, CHECKPOINT_CONFIG), `${JSON.stringify(config, null, 2)}\n`);
    if (existsSync(dir)) {
      const old = `${temp}.old`;
      await rename(dir, old);
      await rename(temp, dir);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(temp, dir);
    }
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
}

/** Reads a checkpoint directory (no checks against a model yet). */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const configFile = join(dir, CHECKPOINT_CONFIG);
  const weightsFile = join(dir, CHECKPOINT_WEIGHTS);
  for (const file of [configFile, weightsFile]) {
    if (!existsSync(file)) {
      throw new UserError(`${dir}: not a vcp-exp checkpoint (missing ${basename(file)})`, {
        hint: 'give a directory written by `vcp-exp train` or `vcp-exp import vcp-clip`',
      });
    }
  }
  let config: CheckpointConfig;
  try {
    config = JSON.parse(await readFile(configFile, 'utf8')) as CheckpointConfig;
  } catch (error) {
    throw new CorruptCheckpointError(
      `${configFile}: not valid JSON (${(error as Error).message})`,
      { cause: error },
    );
  }
  if (config.format !== CHECKPOINT_FORMAT) {
    throw new UserError(
      `${configFile}: format: got ${JSON.stringify(config.format)}, expected "${CHECKPOINT_FORMAT}"`,
    );
  }
  for (const field of ['method', 'config', 'clip'] as const) {
    if (config[field] === undefined) throw new UserError(`${configFile}: ${field}: missing`);
  }
  if (config.weights_sha256 !== undefined) {
    const actual = sha256Hex(await readFile(weightsFile));
    if (actual !== config.weights_sha256)
      throw new CorruptCheckpointError(
        `${weightsFile}: sha256 ${actual} differs from ${config.weights_sha256} recorded in ${CHECKPOINT_CONFIG}: the file was changed or damaged after it was written`,
        { hint: 'train it again (vcp-exp run does so by itself), or restore the file' },
      );
  }
  let tensors: Map<string, RawTensor>;
  try {
    ({ tensors } = await readSafetensors(weightsFile));
  } catch (error) {
    const message = (error as Error).message;
    throw new CorruptCheckpointError(
      message.startsWith(weightsFile) ? message : `${weightsFile}: ${message}`,
      { cause: error },
    );
  }
  config.config = { ...LEGACY_CONFIG_VALUES, ...config.config };
  return { dir, config, tensors };
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Checks that the checkpoint fits `method` (same method, same config apart from the
 * evaluation-only fields, trained on the CLIP weights `clipSha256`) and copies its tensors
 * into the method's parameters. A mismatch is a UserError naming the field and both values.
 */
export function applyCheckpoint(
  method: ZeroShotMethod,
  checkpoint: LoadedCheckpoint,
  clipSha256: string,
): void {
  const file = join(checkpoint.dir, CHECKPOINT_CONFIG);
  const { config } = checkpoint;
  if (config.method !== method.name) {
    throw new UserError(
      `${file}: method: the checkpoint is "${config.method}", the model is "${method.name}"`,
    );
  }
  if (config.clip.sha256 !== clipSha256) {
    throw new UserError(
      `${file}: clip.sha256: the checkpoint was trained on CLIP weights ${config.clip.sha256} (${config.clip.name}), but the loaded weights are ${clipSha256}`,
      {
        hint: 'load the CLIP checkpoint it was trained with (same model.safetensors)',
      },
    );
  }
  const current = method.config as Record<string, unknown>;
  for (const [field, value] of Object.entries(current)) {
    if ((EVAL_ONLY_FIELDS as readonly string[]).includes(field)) continue;
    if (field in config.config && !same(config.config[field], value)) {
      throw new UserError(
        `${file}: config.${field}: the checkpoint has ${JSON.stringify(config.config[field])}, the model config has ${JSON.stringify(value)}`,
      );
    }
  }
  const params = method.parameters();
  const names = [...params.keys()];
  const missing = names.filter((n) => !checkpoint.tensors.has(n));
  const extra = [...checkpoint.tensors.keys()].filter((n) => !params.has(n));
  if (missing.length > 0 || extra.length > 0) {
    throw new UserError(
      `${join(checkpoint.dir, CHECKPOINT_WEIGHTS)}: tensors do not match the ${method.name} model: ${[
        missing.length ? `missing ${missing.join(', ')}` : '',
        extra.length ? `unexpected ${extra.join(', ')}` : '',
      ]
        .filter(Boolean)
        .join('; ')}`,
    );
  }
  for (const [name, v] of params) {
    const raw = checkpoint.tensors.get(name)!;
    if (!same(raw.shape, v.shape)) {
      throw new UserError(
        `${join(checkpoint.dir, CHECKPOINT_WEIGHTS)}: tensor "${name}": shape [${raw.shape}] in the checkpoint, [${v.shape}] in the model`,
      );
    }
  }
  for (const [name, v] of params) {
    const raw = checkpoint.tensors.get(name)!;
    const t = tf.tensor(raw.data, raw.shape, 'float32');
    v.assign(t);
    t.dispose();
  }
}
