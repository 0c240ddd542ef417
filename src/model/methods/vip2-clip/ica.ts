/**
 * ICA, the Image-Conditioned Adapter (spec "ViP-Prompt, part 1"): r class tokens from the global
 * feature (r independent MLPs D → D/2 → W on g + b, added to r learnable tokens O), spliced with
 * the learnable normal/abnormal contexts V, W and the frozen SOS / state word / EOS embeddings into
 * one normal and one abnormal prompt per image, and run through CLIP's text tower:
 *   [SOS | V or W (e) | state word | O + A (r) | EOS]   (T = e + r + 3 positions)
 * The public code pads each prompt to 77 positions; with the causal mask the positions after EOS
 * cannot change the EOS output, so the sequence ends at EOS here.
 */
import { UserError } from '../../../errors.js';
import { tf } from '../../tf.js';
import type { Tensor2D, Tensor3D, Variable } from '../../tf.js';
import type { ClipTextTower } from '../../clip/text.js';
import { param, type SeedSequence, torchDefaultLinear } from '../init.js';
import type { PromptTokenizer } from '../method.js';
import { l2Normalize } from './fgp.js';

/** std of the N(0, σ²) init of the context vectors, class tokens and Meta-Net bias. */
const PROMPT_INIT_STD = 0.02;

interface Mlp {
  fc1: { weight: Variable; bias: Variable };
  fc2: { weight: Variable; bias: Variable };
}

export interface IcaShape {
  /** e: context vectors per prompt. */
  nCtx: number;
  /** r: class tokens. */
  nCls: number;
  /** Joint embedding width D (the global feature, the Meta-Net input). */
  embedDim: number;
  /** Text width W (token embeddings, the Meta-Net output). */
  textWidth: number;
  /** The learnable bias b on the global feature. */
  bias: boolean;
}

export class Ica {
  readonly contextNormal: Variable; // [e, W]
  readonly contextAbnormal: Variable; // [e, W]
  readonly classTokens: Variable; // [r, W]
  readonly bias: Variable | null; // [D]
  readonly metaNet: Mlp[];
  /** Token embeddings of SOS, the normal prompt's and the abnormal prompt's state word, EOS. [W] each */
  private readonly fixed: { sos: Tensor2D; normal: Tensor2D; abnormal: Tensor2D; eos: Tensor2D };
  /** Position of EOS in every prompt (e + r + 2). */
  readonly eosIndex: number;

  constructor(
    readonly shape: IcaShape,
    words: { normal: string; abnormal: string },
    tokenizer: PromptTokenizer,
    private readonly tower: ClipTextTower,
    seeds: SeedSequence,
  ) {
    const { nCtx: e, nCls: r, embedDim: d, textWidth: w } = shape;
    if (tower.config.width !== w)
      throw new Error(`ICA: text width ${w} but the text tower has ${tower.config.width}`);
    this.eosIndex = e + r + 2;
    if (this.eosIndex >= tower.config.contextLength) {
      throw new UserError(
        `vip2-clip config: n_ctx + n_cls = ${e + r} leaves no room for SOS, the state word and EOS in CLIP's ${tower.config.contextLength} positions`,
      );
    }
    const normal = (name: string, dims: number[]) =>
      param(tf.randomNormal(dims, 0, PROMPT_INIT_STD, 'float32', seeds.take()), name);
    this.contextNormal = normal('ica.context_normal', [e, w]);
    this.contextAbnormal = normal('ica.context_abnormal', [e, w]);
    this.classTokens = normal('ica.class_tokens', [r, w]);
    this.bias = shape.bias ? normal('ica.meta_net.bias', [d]) : null;
    const hidden = Math.floor(d / 2);
    this.metaNet = Array.from({ length: r }, (_, j) => {
      const fc1 = torchDefaultLinear(hidden, d, seeds);
      const fc2 = torchDefaultLinear(w, hidden, seeds);
      return {
        fc1: {
          weight: param(fc1.weight, `ica.meta_net.${j}.fc1.weight`),
          bias: param(fc1.bias, `ica.meta_net.${j}.fc1.bias`),
        },
        fc2: {
          weight: param(fc2.weight, `ica.meta_net.${j}.fc2.weight`),
          bias: param(fc2.bias, `ica.meta_net.${j}.fc2.bias`),
        },
      };
    });
    const ids = [
      tokenizer.sotId,
      singleToken(tokenizer, words.normal),
      singleToken(tokenizer, words.abnormal),
      tokenizer.eotId,
    ];
    const rows = tf
      .tidy(() => tf.gather(tower.weights.tokenEmbedding, tf.tensor1d(ids, 'int32')).split(4))
      .map((row) => tf.keep(row)) as Tensor2D[];
    this.fixed = { sos: rows[0], normal: rows[1], abnormal: rows[2], eos: rows[3] };
  }

  parameters(): [string, Variable][] {
    return [
      ['ica.context_normal', this.contextNormal],
      ['ica.context_abnormal', this.contextAbnormal],
      ['ica.class_tokens', this.classTokens],
      ...(this.bias ? [['ica.meta_net.bias', this.bias] as [string, Variable]] : []),
      ...this.metaNet.flatMap(({ fc1, fc2 }, j) =>
        (
          [
            ['fc1.weight', fc1.weight],
            ['fc1.bias', fc1.bias],
            ['fc2.weight', fc2.weight],
            ['fc2.bias', fc2.bias],
          ] as [string, Variable][]
        ).map(([n, v]) => [`ica.meta_net.${j}.${n}`, v] as [string, Variable]),
      ),
    ];
  }

  /**
   * Image-conditioned class tokens Z = O + [h_j(g + b)]_j.
   * @param global unit-length global features. [B, D]
   * @returns [B, r, W]
   */
  classVectors(global: Tensor2D): Tensor3D {
    return tf.tidy(() => {
      const input = this.bias ? global.add(this.bias) : global; // [B, D]
      const tokens = this.metaNet.map(({ fc1, fc2 }) => {
        const hidden = tf.relu(tf.matMul(input, fc1.weight, false, true).add(fc1.bias)); // [B, D/2]
        return tf.matMul(hidden, fc2.weight, false, true).add(fc2.bias).expandDims(1); // [B, 1, W]
      });
      return tf.concat(tokens, 1).add(this.classTokens) as Tensor3D; // [B, r, W]
    });
  }

  /**
   * Token embeddings of every image's prompts: all normal prompts, then all abnormal ones (the
   * code's order). [2B, T, W]
   */
  promptEmbeddings(classVectors: Tensor3D): Tensor3D {
    return tf.tidy(() => {
      const b = classVectors.shape[0];
      const tile = (x: tf.Tensor) => x.expandDims(0).tile([b, 1, 1]); // [rows, W] → [B, rows, W]
      const prompt = (context: Variable, state: Tensor2D) =>
        tf.concat(
          [tile(this.fixed.sos), tile(context), tile(state), classVectors, tile(this.fixed.eos)],
          1,
        ); // [B, T, W]
      return tf.concat(
        [
          prompt(this.contextNormal, this.fixed.normal),
          prompt(this.contextAbnormal, this.fixed.abnormal),
        ],
        0,
      ) as Tensor3D;
    });
  }

  /**
   * Normal / abnormal text embeddings per image, each L2-normalised.
   * @param global unit-length global features. [B, D]
   * @returns [B, 2, D] (index 0 normal, 1 abnormal)
   */
  textEmbeddings(global: Tensor2D): Tensor3D {
    return tf.tidy(() => {
      const b = global.shape[0];
      const prompts = this.promptEmbeddings(this.classVectors(global)); // [2B, T, W]
      const eos = new Array<number>(2 * b).fill(this.eosIndex);
      const features = this.tower.encodeTextEmbeddings(prompts, eos); // [2B, D]
      const stacked = features.reshape([2, b, -1]).transpose([1, 0, 2]); // [B, 2, D]
      return l2Normalize(stacked) as Tensor3D;
    });
  }

  dispose(): void {
    for (const [, v] of this.parameters()) v.dispose();
    tf.dispose(Object.values(this.fixed));
  }
}

/** The id of a state word that must be one BPE token (its embedding fills one position). */
function singleToken(tokenizer: PromptTokenizer, word: string): number {
  const ids = tokenizer.pieceIds(word);
  if (ids.length !== 1) {
    throw new UserError(
      `vip2-clip: the state word "${word}" is ${ids.length} tokens for this tokenizer; ICA's prompt layout has one position for it`,
      { hint: 'use a backbone whose tokenizer has the word as one token (every OpenAI CLIP does)' },
    );
  }
  return ids[0];
}
