/**
 * `vcp-exp import vcp-clip <file.pth> --clip <dir | hub id> [--layers 6,12,18,24]
 * [--image-size 518] --out <dir>`: the authors' released checkpoint → a vcp-exp checkpoint.
 */
import { UserError } from '../errors.js';
import { importVcpClip } from '../model/methods/vcp-clip/import.js';

export interface ImportCommandOptions {
  clip?: string;
  layers?: string | number | (string | number)[];
  imageSize?: string | number;
  out?: string;
}

const METHODS = ['vcp-clip'] as const;
const EXAMPLE =
  'vcp-exp import vcp-clip train_visa.pth --clip openai/clip-vit-large-patch14-336 --out checkpoints/vcp-visa';

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
  if (!(METHODS as readonly string[]).includes(method)) {
    throw new UserError(`import: unknown method "${method}"; available: ${METHODS.join(', ')}`, {
      hint: EXAMPLE,
    });
  }
  if (!file) throw new UserError('import vcp-clip: give the .pth file', { hint: EXAMPLE });
  if (!options.clip)
    throw new UserError(
      'import vcp-clip: --clip is required (the CLIP the checkpoint was trained on)',
      {
        hint: EXAMPLE,
      },
    );
  if (!options.out)
    throw new UserError('import vcp-clip: --out DIR is required', { hint: EXAMPLE });
  let imageSize: number | undefined;
  if (options.imageSize !== undefined) {
    imageSize = Number(options.imageSize);
    if (!Number.isInteger(imageSize) || imageSize <= 0)
      throw new UserError(`--image-size: got "${options.imageSize}", expected a positive integer`);
  }
  const result = await importVcpClip({
    pth: String(file),
    clip: String(options.clip),
    layers: parseLayers(options.layers),
    imageSize,
    out: String(options.out),
  });
  for (const warning of result.warnings) console.error(`warning: ${warning}`);
  const c = result.config.config;
  console.log(
    `${file} → ${result.dir}: ${result.tensors} tensors; vcp-clip on ${result.config.clip.name} (sha256 ${result.config.clip.sha256.slice(0, 12)}…), layers ${(c.layers as number[]).join(',')}, image size ${String(c.image_size)}, n_ctx ${String(c.n_ctx)}, deep prompts ${c.dtp ? String(c.deep_prompt_len) : 'none'}`,
  );
  console.log(`use it with: vcp-exp predict --checkpoint ${result.dir} <images…> --out <dir>`);
}
