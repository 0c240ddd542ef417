/**
 * Unified text prompting (spec "Text prompts", UTP): an ensemble of normal/abnormal prompt pairs
 * (every template × state-word pair at training; any explicit pairs at test time, paper Table 9),
 * with {cls} replaced in token-embedding space by the r category vectors of an image; all
 * images' prompts run through the text encoder as one batch, optionally with deep prompts
 * (dtp.ts), and each image's ensemble is averaged into one normal and one abnormal embedding.
 *
 * Sequences are cut after the longest prompt's EOS (+ the inserted deep prompts): with the
 * causal mask, later positions cannot change any EOS output, so the result is that of the
 * full 77-long sequences.
 */
import { UserError } from '../../../errors.js';
import { tf } from '../../tf.js';
import type { Tensor, Tensor2D, Tensor3D } from '../../tf.js';
import type { ClipTextTower } from '../../clip/text.js';
import type { TemplateTokens } from '../../clip/tokenizer.js';
import type { PromptPair, PromptTokenizer } from '../method.js';
import { show } from '../../../io/wording.js';
import { ConfigError } from '../config.js';
import type { DeepPrompts } from './dtp.js';
import { l2Normalize } from './post-vcp.js';

export type { PromptPair } from '../method.js';

/** The training ensemble as explicit pairs, ordered (template, state pair). */
export function templatePairs(
  templates: readonly string[],
  stateWords: readonly (readonly [string, string])[],
): PromptPair[] {
  return templates.flatMap((template) =>
    stateWords.map(([normal, abnormal]) => ({
      normal: template.replace('{state}', normal),
      abnormal: template.replace('{state}', abnormal),
    })),
  );
}

/**
 * Validates explicit prompt pairs (e.g. a spec's `eval.prompts`): a non-empty list of
 * `{normal, abnormal}` sentences, each with exactly one {cls} slot and no {state} slot.
 * @param field the name errors give the list, e.g. 'eval.prompts'
 */
export function resolvePromptPairs(
  input: unknown,
  field = 'prompts',
  source = 'vcp-clip test-time prompts',
): readonly PromptPair[] {
  const promptError = (at: (string | number)[], got: unknown, expected: string) =>
    new ConfigError(
      [{ path: [...field.split('.'), ...at], message: `got ${show(got)}, expected ${expected}` }],
      source,
    );
  if (!Array.isArray(input) || input.length === 0) {
    throw promptError(
      [],
      input,
      'a non-empty list of {normal, abnormal} prompt pairs, e.g. [{normal: "a photo of a good {cls}", abnormal: "a photo of a damaged {cls}"}]',
    );
  }
  return Object.freeze(
    input.map((pair: unknown, i) => {
      const isObject = typeof pair === 'object' && pair !== null && !Array.isArray(pair);
      if (!isObject || Object.keys(pair).some((k) => k !== 'normal' && k !== 'abnormal')) {
        throw promptError([i], pair, 'an object with the keys normal and abnormal');
      }
      const p = pair as Record<string, unknown>;
      for (const side of ['normal', 'abnormal'] as const) {
        const text = p[side];
        if (
          typeof text !== 'string' ||
          text.split('{cls}').length !== 2 ||
          text.includes('{state}')
        ) {
          throw promptError(
            [i, side],
            text,
            `a sentence with exactly one {cls} slot and no {state} slot, e.g. "a photo of a ${side === 'normal' ? 'good' : 'damaged'} {cls}"`,
          );
        }
      }
      return Object.freeze({ normal: p.normal as string, abnormal: p.abnormal as string });
    }),
  );
}

export interface PromptLayout {
  /** Prompts, ordered (pair, state) with state 0 normal, 1 abnormal. */
  texts: string[];
  /** Ensemble size E (prompt pairs); prompts = 2E. */
  ensemble: number;
  /** Sequence length T of every prompt. */
  length: number;
  /** Token ids, zeros at the [cls] slots and after EOS. [2E × T] */
  ids: Int32Array;
  /** First [cls] slot of each prompt. */
  clsIndex: number[];
  eosIndex: number[];
}

/**
 * Tokenises the prompt ensemble with r slots for [cls].
 * @param reserve positions the deep prompts add (they must not push EOS past the context)
 * @param truncate cut after the longest EOS instead of keeping the full context length
 * @param field where the prompts come from, for errors (default 'vcp-clip config: templates')
 */
export function buildPromptLayout(
  pairs: readonly PromptPair[],
  r: number,
  tokenizer: PromptTokenizer,
  options: { contextLength: number; reserve: number; truncate: boolean; field?: string },
): PromptLayout {
  const field = options.field ?? 'vcp-clip config: templates';
  const texts = pairs.flatMap((pair) => [pair.normal, pair.abnormal]);
  const encoded = texts.map((text) => {
    const tokens = encode(tokenizer, text, r, options.contextLength, field);
    if (tokens.eosIndex + options.reserve >= options.contextLength) {
      throw new UserError(
        `${field}: "${text}" needs ${tokens.eosIndex + 1 + options.reserve} positions with n_ctx=${r} and deep_prompt_len=${options.reserve}; the text context holds ${options.contextLength}`,
        { hint: 'shorten the prompt or lower n_ctx / deep_prompt_len' },
      );
    }
    return tokens;
  });
  const eosIndex = encoded.map((e) => e.eosIndex);
  const length = options.truncate ? Math.max(...eosIndex) + 1 : options.contextLength;
  const ids = new Int32Array(encoded.length * length);
  encoded.forEach((e, p) => ids.set(e.ids.subarray(0, length), p * length));
  return {
    texts,
    ensemble: pairs.length,
    length,
    ids,
    clsIndex: encoded.map((e) => e.placeholderIndex),
    eosIndex,
  };
}

/** The tokenizer's encoding, its errors prefixed with the field the prompt comes from. */
function encode(
  tokenizer: PromptTokenizer,
  text: string,
  r: number,
  contextLength: number,
  field: string,
): TemplateTokens {
  try {
    return tokenizer.encodeTemplate(text, '{cls}', { slots: r, contextLength });
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    throw new UserError(
      `${field}: "${text}": ${error.message.replace(/^prompt template "[^]*?" /, '')}`,
      { hint: error.hint, cause: error },
    );
  }
}

/** Text embeddings of the prompt ensemble for given category vectors. */
export class PromptEncoder {
  /** Token embeddings with zeros at the [cls] slots (the tower adds positions to all T). [P, T, W] */
  private readonly fixed: Tensor3D;
  /** One-hot placement of the r category vectors: row (p, t) selects vector j. [P·T, r] */
  private readonly slots: Tensor2D;

  constructor(
    readonly layout: PromptLayout,
    readonly r: number,
    private readonly tower: ClipTextTower,
    private readonly deep: DeepPrompts | null,
  ) {
    const prompts = layout.texts.length;
    const t = layout.length;
    const slotData = new Float32Array(prompts * t * r);
    const keepData = new Float32Array(prompts * t).fill(1);
    layout.clsIndex.forEach((c, p) => {
      for (let j = 0; j < r; j++) {
        slotData[(p * t + c + j) * r + j] = 1;
        keepData[p * t + c + j] = 0;
      }
    });
    this.slots = tf.tensor2d(slotData, [prompts * t, r]);
    this.fixed = tf.tidy(() => {
      const width = tower.config.width;
      const tokens = tf
        .gather(tower.weights.tokenEmbedding, tf.tensor1d(layout.ids, 'int32'))
        .reshape([prompts, t, width]); // [P, T, W]
      return tokens.mul(tf.tensor3d(keepData, [prompts, t, 1])) as Tensor3D; // [P, T, W]
    });
  }

  /**
   * Input embeddings of every image's prompts, image-major.
   * @param category [B, r, W]
   * @returns [B·P, T, W]
   */
  embed(category: Tensor3D): Tensor3D {
    return tf.tidy(() => {
      const [b, r, w] = category.shape;
      const [p, t] = this.fixed.shape;
      const flat = category.transpose([1, 0, 2]).reshape([r, b * w]); // [r, B·W]
      const placed = tf.matMul(this.slots, flat).reshape([p, t, b, w]).transpose([2, 0, 1, 3]); // [B, P, T, W]
      return placed.add(this.fixed).reshape([b * p, t, w]) as Tensor3D;
    });
  }

  /**
   * Normal/abnormal text embeddings per image: each prompt's embedding L2-normalised, the
   * ensemble mean, normalised again.
   * @param category [B, r, W]
   * @returns [B, 2, D]
   */
  encode(category: Tensor3D, training: boolean): Tensor3D {
    return tf.tidy(() => {
      const b = category.shape[0];
      const { ensemble, eosIndex } = this.layout;
      const eos = Array.from({ length: b }, () => eosIndex).flat();
      const hooks = this.deep?.hooks(eos, this.tower.config.contextLength, training);
      const features = this.tower.encodeTextEmbeddings(this.embed(category), eos, hooks); // [B·P, D]
      const unit = l2Normalize(features).reshape([b, ensemble, 2, -1]); // [B, E, 2, D]
      return l2Normalize(tf.mean(unit, 1)) as Tensor3D; // [B, 2, D]
    });
  }

  dispose(): void {
    const owned: Tensor[] = [this.fixed, this.slots];
    for (const t of owned) t.dispose();
  }
}
