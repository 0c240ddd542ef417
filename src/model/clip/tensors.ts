/**
 * From Hugging Face CLIPModel tensor names to our weight objects: every expected tensor is
 * checked (present, right shape) first, then converted once to the layouts the forward wants
 * (Linear weights as [in, out], q/k/v fused, patch conv as a [p·p·3, W] matrix for NHWC patches).
 */
import { UserError } from '../../errors.js';
import { materialize, tf } from '../tf.js';
import type { Tensor1D, Tensor2D } from '../tf.js';
import type { BlockWeights } from './block.js';
import type { ClipConfig, TextConfig, VisionConfig } from './config.js';
import type { LayerNorm, Linear } from './layers.js';
import type { RawTensor } from '../../io/safetensors.js';
import type { TextWeights } from './text.js';
import type { VisionWeights } from './vision.js';

function blockShapes(prefix: string, width: number, mlpDim: number): [string, number[]][] {
  const shapes: [string, number[]][] = [];
  for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
    shapes.push(
      [`${prefix}.self_attn.${proj}.weight`, [width, width]],
      [`${prefix}.self_attn.${proj}.bias`, [width]],
    );
  }
  for (const norm of ['layer_norm1', 'layer_norm2'])
    shapes.push([`${prefix}.${norm}.weight`, [width]], [`${prefix}.${norm}.bias`, [width]]);
  shapes.push([`${prefix}.mlp.fc1.weight`, [mlpDim, width]], [`${prefix}.mlp.fc1.bias`, [mlpDim]]);
  shapes.push([`${prefix}.mlp.fc2.weight`, [width, mlpDim]], [`${prefix}.mlp.fc2.bias`, [width]]);
  return shapes;
}

/** Every tensor a CLIPModel checkpoint of this config must hold, with its shape. */
export function expectedClipTensors(config: ClipConfig): Map<string, number[]> {
  const { vision: v, text: t, projectionDim } = config;
  const grid = v.imageSize / v.patchSize;
  const shapes: [string, number[]][] = [
    ['vision_model.embeddings.patch_embedding.weight', [v.width, 3, v.patchSize, v.patchSize]],
    ['vision_model.embeddings.class_embedding', [v.width]],
    ['vision_model.embeddings.position_embedding.weight', [1 + grid * grid, v.width]],
    ['vision_model.pre_layrnorm.weight', [v.width]],
    ['vision_model.pre_layrnorm.bias', [v.width]],
    ...Array.from({ length: v.layers }, (_, i) =>
      blockShapes(`vision_model.encoder.layers.${i}`, v.width, v.mlpDim),
    ).flat(),
    ['vision_model.post_layernorm.weight', [v.width]],
    ['vision_model.post_layernorm.bias', [v.width]],
    ['visual_projection.weight', [projectionDim, v.width]],
    ['text_model.embeddings.token_embedding.weight', [t.vocabSize, t.width]],
    ['text_model.embeddings.position_embedding.weight', [t.contextLength, t.width]],
    ...Array.from({ length: t.layers }, (_, i) =>
      blockShapes(`text_model.encoder.layers.${i}`, t.width, t.mlpDim),
    ).flat(),
    ['text_model.final_layer_norm.weight', [t.width]],
    ['text_model.final_layer_norm.bias', [t.width]],
    ['text_projection.weight', [projectionDim, t.width]],
    ['logit_scale', []],
  ];
  return new Map(shapes);
}

/** What a checkpoint format says about one tensor before its values are read. */
export interface TensorDescription {
  dtype: string;
  shape: readonly number[];
}

export const FLOAT_DTYPES: readonly string[] = ['F32', 'F16', 'BF16'];

/**
 * Every way `describe` (a name → dtype and shape lookup: a safetensors header, a torch archive,
 * loaded tensors) departs from what `config` needs: missing, mis-shaped or non-float tensors.
 */
export function clipTensorProblems(
  describe: (name: string) => TensorDescription | undefined,
  config: ClipConfig,
): string[] {
  const problems: string[] = [];
  for (const [name, shape] of expectedClipTensors(config)) {
    const found = describe(name);
    if (!found) problems.push(`tensor "${name}" is missing (expected shape [${shape}])`);
    else if (found.shape.length !== shape.length || found.shape.some((s, i) => s !== shape[i]))
      problems.push(`tensor "${name}" has shape [${found.shape.join(',')}], expected [${shape}]`);
    else if (!FLOAT_DTYPES.includes(found.dtype))
      problems.push(`tensor "${name}" has dtype ${found.dtype}, expected a float`);
  }
  return problems;
}

/** "first problem (and N more: …)" for one error line. */
export function summariseProblems(problems: readonly string[]): string {
  const more =
    problems.length > 1
      ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''}: ${problems.slice(1, 4).join('; ')}${problems.length > 4 ? '; …' : ''})`
      : '';
  return `${problems[0]}${more}`;
}

/**
 * Where the conversion takes raw tensors from: loaded tensors (a Map) or a file read tensor by
 * tensor as the conversion goes (so that a load holds about one copy of the weights).
 */
export interface RawTensors {
  describe(name: string): TensorDescription | undefined;
  /** The tensor's values (read from the file when it is one); `describe` said it exists. */
  read(name: string): RawTensor;
}

export function rawTensors(tensors: ReadonlyMap<string, RawTensor> | RawTensors): RawTensors {
  if (!(tensors instanceof Map)) return tensors as RawTensors;
  return { describe: (name) => tensors.get(name), read: (name) => tensors.get(name)! };
}

/** Throws a UserError naming the first missing or mis-shaped tensor (and how many others are). */
export function checkClipTensors(tensors: RawTensors, config: ClipConfig, source: string): void {
  const problems = clipTensorProblems((name) => tensors.describe(name), config);
  if (problems.length === 0) return;
  throw new UserError(`${source}: ${summariseProblems(problems)}`, {
    hint: 'the weights do not match config.json: use the model.safetensors and config.json of the same Hugging Face CLIP checkpoint',
  });
}

/** [rows, cols] row-major → [cols, rows]. */
function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** Converts raw tensors to the forward's layouts, each made native at once (materialize). */
class Converter {
  constructor(private readonly tensors: RawTensors) {}

  data(name: string): Float32Array {
    return this.tensors.read(name).data as Float32Array;
  }

  vector(name: string): Tensor1D {
    return materialize(tf.tensor1d(this.data(name)));
  }

  matrix(name: string): Tensor2D {
    const { shape, data } = this.tensors.read(name);
    return materialize(tf.tensor2d(data as Float32Array, [shape[0], shape[1]]));
  }

  /** HF Linear weight [out, in] → [in, out]. */
  linear(prefix: string, bias = true): Linear {
    const { shape, data } = this.tensors.read(`${prefix}.weight`);
    const [out, inDim] = shape;
    const weight = transposed(data as Float32Array, out, inDim);
    return {
      weight: materialize(tf.tensor2d(weight, [inDim, out])),
      bias: bias ? this.vector(`${prefix}.bias`) : undefined,
    };
  }

  norm(prefix: string, eps: number): LayerNorm {
    return { gamma: this.vector(`${prefix}.weight`), beta: this.vector(`${prefix}.bias`), eps };
  }

  block(prefix: string, width: number, heads: number, eps: number): BlockWeights {
    const scale = 1 / Math.sqrt(width / heads);
    const weight = new Float32Array(width * 3 * width); // [W, 3W]: columns q | k | v
    const bias = new Float32Array(3 * width);
    ['q_proj', 'k_proj', 'v_proj'].forEach((proj, j) => {
      const s = j === 0 ? scale : 1;
      const w = this.data(`${prefix}.self_attn.${proj}.weight`); // [out, in]
      const b = this.data(`${prefix}.self_attn.${proj}.bias`);
      for (let o = 0; o < width; o++) {
        for (let i = 0; i < width; i++)
          weight[i * 3 * width + j * width + o] = w[o * width + i] * s;
        bias[j * width + o] = b[o] * s;
      }
    });
    return {
      ln1: this.norm(`${prefix}.layer_norm1`, eps),
      qkv: {
        weight: materialize(tf.tensor2d(weight, [width, 3 * width])),
        bias: materialize(tf.tensor1d(bias)),
      },
      out: this.linear(`${prefix}.self_attn.out_proj`),
      ln2: this.norm(`${prefix}.layer_norm2`, eps),
      fc1: this.linear(`${prefix}.mlp.fc1`),
      fc2: this.linear(`${prefix}.mlp.fc2`),
    };
  }
}

/** Patch conv [W, 3, p, p] → matrix [p·p·3, W] for patches flattened as (y, x, channel). */
function patchMatrix(conv: Float32Array, width: number, p: number): Tensor2D {
  const out = new Float32Array(p * p * 3 * width);
  for (let o = 0; o < width; o++) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < p; y++) {
        for (let x = 0; x < p; x++)
          out[((y * p + x) * 3 + c) * width + o] = conv[((o * 3 + c) * p + y) * p + x];
      }
    }
  }
  return materialize(tf.tensor2d(out, [p * p * 3, width]));
}

export function visionWeights(
  tensors: ReadonlyMap<string, RawTensor> | RawTensors,
  v: VisionConfig,
): VisionWeights {
  const cv = new Converter(rawTensors(tensors));
  const eps = v.layerNormEps;
  return {
    patchEmbed: patchMatrix(
      cv.data('vision_model.embeddings.patch_embedding.weight'),
      v.width,
      v.patchSize,
    ),
    classEmbedding: cv.vector('vision_model.embeddings.class_embedding'),
    positions: cv.data('vision_model.embeddings.position_embedding.weight').slice(),
    lnPre: cv.norm('vision_model.pre_layrnorm', eps),
    blocks: Array.from({ length: v.layers }, (_, i) =>
      cv.block(`vision_model.encoder.layers.${i}`, v.width, v.heads, eps),
    ),
    lnPost: cv.norm('vision_model.post_layernorm', eps),
    projection: cv.linear('visual_projection', false).weight,
  };
}

export function textWeights(
  tensors: ReadonlyMap<string, RawTensor> | RawTensors,
  t: TextConfig,
): TextWeights {
  const cv = new Converter(rawTensors(tensors));
  const eps = t.layerNormEps;
  return {
    tokenEmbedding: cv.matrix('text_model.embeddings.token_embedding.weight'),
    positionEmbedding: cv.matrix('text_model.embeddings.position_embedding.weight'),
    blocks: Array.from({ length: t.layers }, (_, i) =>
      cv.block(`text_model.encoder.layers.${i}`, t.width, t.heads, eps),
    ),
    lnFinal: cv.norm('text_model.final_layer_norm', eps),
    projection: cv.linear('text_projection', false).weight,
  };
}
