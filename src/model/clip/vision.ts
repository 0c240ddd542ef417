/**
 * CLIP's vision transformer, split into the steps a method needs (as open_clip's
 * forward_intermediates): embed → blocks (keeping the outputs of chosen blocks) → pool.
 * Images are NHWC [B, S, S, 3], already resized and normalised; any S that is a multiple of the
 * patch size works (positional embeddings are resized to the grid and cached per S).
 */
import { UserError } from '../../errors.js';
import { tf } from '../tf.js';
import type { Tensor1D, Tensor2D, Tensor3D, Tensor4D } from '../tf.js';
import { createBlock } from './block.js';
import type { Block, BlockWeights } from './block.js';
import { gridSize } from './config.js';
import type { ClipOptions, TokenOutput, VisionConfig } from './config.js';
import { ACTIVATION_FNS, disposeAll, layerNorm } from './layers.js';
import type { LayerNorm } from './layers.js';
import { resizePosEmbed } from './pos-embed.js';

export interface VisionWeights {
  /** Patch conv (no bias) as a matrix [p·p·3, W] over patches flattened as (y, x, channel). */
  patchEmbed: Tensor2D;
  /** [W] */
  classEmbedding: Tensor1D;
  /** The checkpoint's positional embeddings [1 + g², W], kept on the CPU for resizing. */
  positions: Float32Array;
  lnPre: LayerNorm;
  blocks: BlockWeights[];
  lnPost: LayerNorm;
  /** [W, P] */
  projection: Tensor2D;
}

export interface VisionForwardOptions {
  /** 1-based indices of the blocks whose outputs are returned, e.g. [6, 12, 18, 24]. */
  layers?: readonly number[];
  /** Form of the returned block outputs (default: the model's intermediateTokens option). */
  tokens?: TokenOutput;
  /**
   * The global feature: ln_post(class token) · projection (`ln_post`, CLIP's image embedding,
   * default) or class token · projection without ln_post (`no_ln_post`, ViP²-CLIP's code).
   */
  global?: 'ln_post' | 'no_ln_post';
  /** Images per forward pass; a larger batch is processed in chunks (default: all at once). */
  chunkSize?: number;
}

export interface VisionOutput {
  /** Per requested block: [B, 1+L, W] raw, or [B, 1+L, P] projected (class token first). */
  layers: Tensor3D[];
  /** g = [ln_post](class token of the last block) · visual projection, not normalised. [B, P] */
  global: Tensor2D;
}

export class ClipVisionTower {
  readonly blocks: Block[];
  private readonly positionCache = new Map<number, Tensor2D>();

  constructor(
    readonly config: Readonly<VisionConfig>,
    readonly weights: VisionWeights,
    private readonly options: Pick<
      ClipOptions,
      'activation' | 'posEmbedResize' | 'intermediateTokens'
    >,
  ) {
    const act = ACTIVATION_FNS[options.activation];
    this.blocks = weights.blocks.map((w) => createBlock(w, config.heads, act));
  }

  /** Positional embeddings for input size S (resized from the checkpoint's grid once per S). [1+L, W] */
  positions(imageSize: number): Tensor2D {
    let cached = this.positionCache.get(imageSize);
    if (!cached) {
      const { width, imageSize: native, patchSize } = this.config;
      const data = resizePosEmbed(
        this.weights.positions,
        width,
        native / patchSize,
        gridSize(this.config, imageSize),
        this.options.posEmbedResize,
      );
      cached = tf.keep(tf.tensor2d(data, [data.length / width, width]));
      this.positionCache.set(imageSize, cached);
    }
    return cached;
  }

  /** Patchify, class token, positions, ln_pre. pixels [B, S, S, 3] → [B·(1+L), W] */
  embed(pixels: Tensor4D): Tensor2D {
    const [b, h, w, c] = pixels.shape;
    if (h !== w || c !== 3)
      throw new UserError(
        `CLIP vision input: got shape [${pixels.shape}], expected [B, S, S, 3] (square RGB, NHWC)`,
      );
    const p = this.config.patchSize;
    const g = gridSize(this.config, h, 'CLIP vision input size');
    const { width } = this.config;
    const positions = this.positions(h);
    return tf.tidy(() => {
      // Patches flattened (y, x, channel) with 4-D reshapes/transposes only.
      const patches = pixels
        .reshape([b * g, p, g, p * 3])
        .transpose([0, 2, 1, 3])
        .reshape([b * g * g, p * p * 3]) as Tensor2D; // [B·L, p·p·3]
      const tokens = tf.matMul(patches, this.weights.patchEmbed).reshape([b, g * g, width]); // [B, L, W]
      const cls = this.weights.classEmbedding.reshape([1, 1, width]).tile([b, 1, 1]); // [B, 1, W]
      const x = tf.concat([cls, tokens], 1).add(positions); // [B, 1+L, W]
      return layerNorm(x.reshape([b * (1 + g * g), width]) as Tensor2D, this.weights.lnPre); // [B·(1+L), W]
    });
  }

  /**
   * Runs every block, keeping the outputs of `layers` (1-based). Does not dispose `x`.
   * x [B·T, W] → { taps: one [B·T, W] per requested layer, last: [B·T, W] }
   */
  runBlocks(
    x: Tensor2D,
    batch: number,
    layers: readonly number[] = [],
  ): { taps: Tensor2D[]; last: Tensor2D } {
    for (const index of layers) {
      if (!Number.isInteger(index) || index < 1 || index > this.blocks.length) {
        throw new UserError(
          `CLIP vision layers: got ${index}, expected 1-based block indices in 1..${this.blocks.length}`,
        );
      }
    }
    const kept = new Map<number, Tensor2D>();
    let h = x;
    this.blocks.forEach((block, i) => {
      const next = block(h, batch);
      if (h !== x && ![...kept.values()].includes(h)) h.dispose();
      h = next;
      if (layers.includes(i + 1)) kept.set(i + 1, h);
    });
    return { taps: layers.map((i) => kept.get(i)!), last: h };
  }

  /** ln_post + visual projection of every token. x [N, W] → [N, P] */
  projectTokens(x: Tensor2D): Tensor2D {
    return tf.tidy(() => tf.matMul(layerNorm(x, this.weights.lnPost), this.weights.projection));
  }

  /** Global feature from the last block's tokens (with or without ln_post). x [B·T, W] → [B, P] */
  pool(x: Tensor2D, batch: number, lnPost = true): Tensor2D {
    return tf.tidy(() => {
      const cls = x
        .reshape([batch, -1, this.config.width])
        .slice([0, 0, 0], [batch, 1, this.config.width])
        .reshape([batch, this.config.width]) as Tensor2D; // [B, W]
      return lnPost
        ? this.projectTokens(cls)
        : (tf.matMul(cls, this.weights.projection) as Tensor2D); // [B, P]
    });
  }

  /** embed → blocks → pool, in chunks of `chunkSize` images. pixels [B, S, S, 3] */
  forward(pixels: Tensor4D, options: VisionForwardOptions = {}): VisionOutput {
    const batch = pixels.shape[0];
    const chunk = Math.max(1, Math.min(options.chunkSize ?? batch, batch));
    if (chunk < batch) {
      const parts: VisionOutput[] = [];
      for (let start = 0; start < batch; start += chunk) {
        const size = Math.min(chunk, batch - start);
        const slice = pixels.slice([start, 0, 0, 0], [size, -1, -1, -1]);
        parts.push(this.forward(slice, { ...options, chunkSize: size }));
        slice.dispose();
      }
      const joined: VisionOutput = {
        layers: parts[0].layers.map((_, j) =>
          tf.concat(
            parts.map((part) => part.layers[j]),
            0,
          ),
        ),
        global: tf.concat(
          parts.map((part) => part.global),
          0,
        ),
      };
      parts.forEach(disposeAll);
      return joined;
    }
    const tokens = options.tokens ?? this.options.intermediateTokens;
    const x = this.embed(pixels);
    const { taps, last } = this.runBlocks(x, batch, options.layers ?? []);
    const global = this.pool(last, batch, (options.global ?? 'ln_post') === 'ln_post');
    const layers = taps.map((tap) => {
      const out = tokens === 'projected' ? this.projectTokens(tap) : tap;
      return out.reshape([batch, -1, out.shape[1]]) as Tensor3D;
    });
    const owned = new Set([...taps, last, x]);
    for (const t of owned) t.dispose();
    return { layers, global };
  }

  dispose(): void {
    disposeAll(this.weights);
    for (const t of this.positionCache.values()) t.dispose();
    this.positionCache.clear();
  }
}
