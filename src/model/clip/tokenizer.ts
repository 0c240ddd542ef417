/**
 * CLIP's byte-level BPE tokenizer, loaded from a Hugging Face tokenizer.json through
 * @huggingface/tokenizers (the same normaliser, split regex, BPE merges and SOS/EOS post-processor
 * as the Rust `tokenizers` library; tests/model/clip/tokenizer.test.ts checks it id for id against
 * transformers and OpenAI's original BPE). Batches follow OpenAI/open_clip, not HF: rows padded
 * with 0 after EOS, and an over-long text is cut to the context length with EOS as its last token.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.js';

export const CLIP_CONTEXT_LENGTH = 77;
const SOT = '<|startoftext|>';
const EOT = '<|endoftext|>';

export interface TokenBatch {
  /** [N × contextLength] row-major: SOS, tokens, EOS, then zeros. */
  ids: Int32Array;
  /** Per row, the position of EOS (where CLIP reads the text feature). */
  eosIndex: number[];
}

/** A template with its placeholder reserved: see ClipTokenizer.encodeTemplate. */
export interface TemplateTokens {
  /** [contextLength]: SOS, prefix, `slots` zeros standing for the placeholder, suffix, EOS, zeros. */
  ids: Int32Array;
  /** Position of the first placeholder slot. */
  placeholderIndex: number;
  slots: number;
  eosIndex: number;
}

export class ClipTokenizer {
  readonly sotId: number;
  readonly eotId: number;

  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly source: string,
  ) {
    const sot = tokenizer.token_to_id(SOT);
    const eot = tokenizer.token_to_id(EOT);
    if (sot === undefined || eot === undefined) {
      throw new UserError(
        `${source}: not a CLIP tokenizer: the vocabulary has no ${sot === undefined ? SOT : EOT} token`,
      );
    }
    this.sotId = sot;
    this.eotId = eot;
  }

  /** Loads tokenizer.json (and tokenizer_config.json when present) from a checkpoint directory. */
  static async fromDirectory(dir: string): Promise<ClipTokenizer> {
    const file = join(dir, 'tokenizer.json');
    const json = await readJson(file, true);
    const config = (await readJson(join(dir, 'tokenizer_config.json'), false)) ?? {};
    return ClipTokenizer.fromJson(json!, config, file);
  }

  /** Builds a tokenizer from parsed tokenizer.json / tokenizer_config.json objects. */
  static fromJson(
    tokenizerJson: object,
    tokenizerConfig: object,
    source = 'tokenizer.json',
  ): ClipTokenizer {
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (error) {
      throw new UserError(`${source}: cannot build a tokenizer (${(error as Error).message})`, {
        cause: error,
      });
    }
    return new ClipTokenizer(tokenizer, source);
  }

  /** Token ids of `text` with SOS and EOS, not truncated. */
  encode(text: string): number[] {
    return this.tokenizer.encode(text).ids;
  }

  /** Token ids of a word piece without SOS/EOS, e.g. the ids a class name or a template prefix adds. */
  pieceIds(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /** Pads (zeros) or truncates (EOS kept last) each text to `contextLength` ids. */
  encodeBatch(texts: readonly string[], contextLength = CLIP_CONTEXT_LENGTH): TokenBatch {
    const ids = new Int32Array(texts.length * contextLength); // zero padding
    const eosIndex: number[] = [];
    texts.forEach((text, row) => {
      const tokens = this.encode(text);
      if (tokens.length > contextLength) {
        tokens.length = contextLength;
        tokens[contextLength - 1] = this.eotId;
      }
      ids.set(tokens, row * contextLength);
      eosIndex.push(tokens.length - 1);
    });
    return { ids, eosIndex };
  }

  /**
   * Tokenises `template` with `placeholder` (e.g. "[cls]" in "a photo of a good [cls].") replaced
   * by `slots` reserved positions (id 0) whose embeddings the caller substitutes. The text on
   * each side is tokenised on its own; CLIP's pre-tokeniser splits at spaces and at letter/
   * punctuation boundaries, so this equals tokenising the whole template when the placeholder
   * stands as a word of its own.
   */
  encodeTemplate(
    template: string,
    placeholder: string,
    options: { slots?: number; contextLength?: number } = {},
  ): TemplateTokens {
    const slots = options.slots ?? 1;
    const contextLength = options.contextLength ?? CLIP_CONTEXT_LENGTH;
    const parts = template.split(placeholder);
    if (placeholder === '' || parts.length !== 2) {
      throw new UserError(
        `prompt template "${template}": expected the placeholder "${placeholder}" exactly once, found it ${Math.max(parts.length - 1, 0)} times`,
        { hint: `write the template like "a photo of a {state} ${placeholder || '[cls]'}."` },
      );
    }
    const prefix = this.pieceIds(parts[0]);
    const suffix = this.pieceIds(parts[1]);
    const tokens = [
      this.sotId,
      ...prefix,
      ...new Array<number>(slots).fill(0),
      ...suffix,
      this.eotId,
    ];
    if (tokens.length > contextLength) {
      throw new UserError(
        `prompt template "${template}" needs ${tokens.length} tokens with ${slots} placeholder slot(s); CLIP's context holds ${contextLength}`,
        { hint: 'shorten the template' },
      );
    }
    const ids = new Int32Array(contextLength);
    ids.set(tokens);
    return { ids, placeholderIndex: 1 + prefix.length, slots, eosIndex: tokens.length - 1 };
  }

  /** Text of a sequence of ids (special tokens dropped): for logs and error messages. */
  decode(ids: readonly number[]): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: true });
  }
}

async function readJson(file: string, required: boolean): Promise<object | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (!required && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(
      `${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      { cause: error },
    );
  }
  try {
    return JSON.parse(text) as object;
  } catch (error) {
    throw new UserError(`${file}: not valid JSON (${(error as Error).message})`, { cause: error });
  }
}
