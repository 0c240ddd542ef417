/**
 * `vcp-exp import <method> <file.pth> --clip <dir | name | hub id> --out <dir> [--layers 6,12,18,24]
 * [--image-size 518]`: a checkpoint the authors' public code saved → a vcp-exp checkpoint
 * that `predict` and the runner accept.
 */
import { UserError } from '../errors.js';
import { PUBLIC_IMPORTERS } from '../model/methods/index.js';
import type { MethodName } from '../model/methods/method.js';

export interface ImportCommandOptions {
  clip?: string;
  layers?: string | number | (string | number)[];
  imageSize?: string | number;
  out?: string;
}

const example = (method: string) =>
  `vcp-exp import ${method} epoch_10.pth --clip ViT-L-14-336 --out checkpoints/${method}`;

/** "6,12,18,24", "6 12 18 24" or repeated --layers → [6, 12, 18, 24]. */
export function parseLayers(value: ImportCommandOptions['layers']): number[] | undefined {
  if (value === undefined) return undefined;
  const parts = (Array.isArray(value) ? value : [value])
    .flatMap((v) => String(v).split(/[\s,]+/))
    .filter((v) => v !== '');
  const layers = parts.map(Number);
  if (layers.length === 0 || layers.some((l) => !Number.isInteger(l) || l < 1)) {
    throw new UserError(`--layers: got "${parts.join(',')}", expected 1-based block indices`, {
      hint: 'e.g. --layers 6,12,18,24',
    });
  }
  return layers;
}

export async function importCommand(
  method: string,
  file: string | undefined,
  options: ImportCommandOptions,
): Promise<void> {
  const known = Object.keys(PUBLIC_IMPORTERS);
  const load = PUBLIC_IMPORTERS[method as MethodName];
  if (!load)
    throw new UserError(`import: got method "${method}", expected one of ${known.join(', ')}`, {
      hint: example(known[0]),
    });
  if (!file) throw new UserError(`import ${method}: give the .pth file`, { hint: example(method) });
  if (!options.clip)
    throw new UserError(
      `import ${method}: --clip is required (the CLIP the checkpoint was trained on)`,
      { hint: example(method) },
    );
  if (!options.out)
    throw new UserError(`import ${method}: --out DIR is required`, { hint: example(method) });
  let imageSize: number | undefined;
  if (options.imageSize !== undefined) {
    imageSize = Number(options.imageSize);
    if (!Number.isInteger(imageSize) || imageSize <= 0)
      throw new UserError(`--image-size: got "${options.imageSize}", expected a positive integer`);
  }
  const result = await (
    await load()
  )({
    pth: String(file),
    clip: String(options.clip),
    layers: parseLayers(options.layers),
    imageSize,
    out: String(options.out),
  });
  for (const warning of result.warnings) console.error(`warning: ${warning}`);
  const c = result.config.config;
  console.log(
    `${file} → ${result.dir}: ${result.tensors} tensors; ${method} on ${result.config.clip.name} (sha256 ${result.config.clip.sha256.slice(0, 12)}…), layers ${(c.layers as number[]).join(',')}, image size ${String(c.image_size)}, ${result.summary}`,
  );
  console.log(`use it with: vcp-exp predict --checkpoint ${result.dir} <images…> --out <dir>`);
}
