/**
 * The authors' released checkpoints (github.com/xiaozhen228/VCP-CLIP): the dict their train.py
 * saves, mapped to this method's parameter names and the config it implies.
 *
 * train.py saves {'trainable_linearlayer': LinearLayer.state_dict() (fc.<i>.weight/bias: the
 * per-layer Linear_l of the baseline branch), 'New_Lan_Embed': Context_Prompting.state_dict()
 * (prompt_query [1, r, W] = q, prompt_linear1.fc.weight/bias = the Mini-Net Conv1d, prompt_temp
 * = τ₁), 'Zero_try': Zero_Parameter.state_dict() (Conv1d k=1 projections q_proj_pre,
 * k_proj_pre_1, v_proj_pre_1, proj_post_t, prompt_temp_l1 = τ₂)} and, at top level, the CLIP
 * model's parameters named *prompt* (prompt_embeddings [1, n, W] = P₀, deep_prompt_embeddings
 * [layers − 1, n, W] = P₁…, prompt_proj, prompt_norm; prompt_text_projection, which no forward
 * uses, is dropped).
 */
import { UserError } from '../../../errors.js';

/**
 * A tensor of the state dict, as the .pth reader hands it over (floats widened to float32);
 * the state is a tree of Maps (dicts), arrays, primitives and these.
 */
export interface StateTensor {
  readonly kind: 'tensor';
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array;
}

const isTensor = (value: unknown): value is StateTensor =>
  typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'tensor';

export interface PublicCheckpoint {
  /** Checkpoint tensors under this method's names. */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  /** The config fields the weights determine (and the public code's fixed choices). */
  config: {
    n_ctx: number;
    deep_prompt_len: number;
    dtp: boolean;
    pre_vcp: true;
    post_vcp: true;
    heads: number;
    attention_scaling: false;
    activation: 'gelu';
    pos_embed_resize: 'bicubic_antialias';
  };
  /** Widths the weights were trained for, to check against a CLIP. */
  dims: { textWidth: number; visionWidth: number; embedDim: number; deepPrompts: number };
  /** Count of per-layer linear maps (trainable_linearlayer.fc.<i>): the number of feature layers. */
  linearLayers: number;
  warnings: string[];
}

/** Zero_Parameter's default (the public code never changes it). */
const PUBLIC_POST_VCP_HEADS = 8;
const PARTS = ['trainable_linearlayer', 'New_Lan_Embed', 'Zero_try'] as const;

type Dict = Map<unknown, unknown>;

/** The public state, unwrapped from {'state_dict' | 'model' | 'checkpoint': …} if needed. */
function unwrap(state: unknown, file: string): Dict {
  if (!(state instanceof Map))
    throw new UserError(
      `${file}: not a VCP-CLIP checkpoint: it holds a ${describe(state)}, not a dict`,
    );
  if (PARTS.some((p) => state.has(p))) return state;
  for (const key of ['state_dict', 'model', 'checkpoint']) {
    const inner = state.get(key);
    if (inner instanceof Map && PARTS.some((p) => inner.has(p))) return inner;
  }
  return state;
}

function describe(value: unknown): string {
  if (isTensor(value)) return `tensor [${value.shape.join(', ')}]`;
  if (Array.isArray(value)) return 'list';
  return value === null ? 'None' : typeof value;
}

/**
 * Maps the dict read from a public .pth (see io/torch-zip) to checkpoint tensors. Every missing
 * or malformed key is named in one UserError; a checkpoint without deep prompts gives a warning.
 */
export function fromPublicCheckpoint(state: unknown, file: string): PublicCheckpoint {
  const root = unwrap(state, file);
  const problems: string[] = [];
  const part = (name: string): Dict | undefined => {
    const value = root.get(name);
    if (value === undefined) problems.push(`"${name}" (missing)`);
    else if (!(value instanceof Map)) problems.push(`"${name}" (a ${describe(value)}, not a dict)`);
    else return value;
    return undefined;
  };
  const parts = {
    linear: part('trainable_linearlayer'),
    pre: part('New_Lan_Embed'),
    post: part('Zero_try'),
  };
  const tensor = (dict: Dict | undefined, where: string, key: string, rank?: number) => {
    if (!dict) return undefined;
    const value = dict.get(key);
    const name = where ? `${where}.${key}` : key;
    if (value === undefined) problems.push(`"${name}" (missing)`);
    else if (!isTensor(value) || !(value.data instanceof Float32Array))
      problems.push(`"${name}" (a ${describe(value)}, expected a float tensor)`);
    else if (rank !== undefined && value.shape.length !== rank)
      problems.push(`"${name}" (shape [${value.shape.join(', ')}], expected rank ${rank})`);
    else return value as StateTensor & { data: Float32Array };
    return undefined;
  };
  const q = tensor(parts.pre, 'New_Lan_Embed', 'prompt_query', 3);
  const miniWeight = tensor(parts.pre, 'New_Lan_Embed', 'prompt_linear1.fc.weight', 3);
  const miniBias = tensor(parts.pre, 'New_Lan_Embed', 'prompt_linear1.fc.bias', 1);
  const tau1 = tensor(parts.pre, 'New_Lan_Embed', 'prompt_temp');
  const projections = (['q_proj_pre', 'k_proj_pre_1', 'v_proj_pre_1', 'proj_post_t'] as const).map(
    (name) => ({
      weight: tensor(parts.post, 'Zero_try', `${name}.weight`, 3),
      bias: tensor(parts.post, 'Zero_try', `${name}.bias`, 1),
    }),
  );
  const tau2 = tensor(parts.post, 'Zero_try', 'prompt_temp_l1');
  const layerIndices = parts.linear
    ? [...parts.linear.keys()]
        .map((k) => /^fc\.(\d+)\.weight$/.exec(String(k))?.[1])
        .filter((i): i is string => i !== undefined)
        .map(Number)
        .sort((a, b) => a - b)
    : [];
  if (parts.linear && layerIndices.length === 0)
    problems.push('"trainable_linearlayer.fc.<i>.weight" (no per-layer linear maps)');
  layerIndices.forEach((index, position) => {
    if (index !== position)
      problems.push(`"trainable_linearlayer.fc.${position}.weight" (missing)`);
  });
  const linears = layerIndices.map((i) => ({
    weight: tensor(parts.linear, 'trainable_linearlayer', `fc.${i}.weight`, 2),
    bias: tensor(parts.linear, 'trainable_linearlayer', `fc.${i}.bias`, 1),
  }));
  const p0 = tensor(root, '', 'prompt_embeddings', 3);
  const hasDeep = root.has('deep_prompt_embeddings');
  const deep = hasDeep ? tensor(root, '', 'deep_prompt_embeddings', 3) : undefined;
  const proj = hasDeep
    ? {
        weight: tensor(root, '', 'prompt_proj.weight', 2),
        bias: tensor(root, '', 'prompt_proj.bias', 1),
      }
    : undefined;
  const norm = hasDeep
    ? {
        weight: tensor(root, '', 'prompt_norm.weight', 1),
        bias: tensor(root, '', 'prompt_norm.bias', 1),
      }
    : undefined;
  if (problems.length > 0) {
    throw new UserError(
      `${file}: not a VCP-CLIP checkpoint of the public train.py: ${problems.length === 1 ? 'key' : 'keys'} ${problems.join(', ')}`,
      {
        hint: `top-level keys found: ${[...root.keys()].map(String).join(', ') || 'none'}; expected trainable_linearlayer, New_Lan_Embed, Zero_try and the prompt_* parameters`,
      },
    );
  }

  const tensors: PublicCheckpoint['tensors'] = new Map();
  const put = (name: string, shape: number[], data: Float32Array) =>
    tensors.set(name, { shape, data });
  const [, r, textWidth] = q!.shape;
  put('pre_vcp.q', [r, textWidth], q!.data);
  // Conv1d(1 → r, kernel 3) weight [r, 1, 3] → [r, 3]
  put('pre_vcp.mininet.weight', [miniWeight!.shape[0], miniWeight!.shape[2]], miniWeight!.data);
  put('pre_vcp.mininet.bias', [...miniBias!.shape], miniBias!.data);
  put('maps.base.logit_scale', [], scalar(tau1!, 'New_Lan_Embed.prompt_temp', file));
  (['q', 'k', 'v', 'o'] as const).forEach((name, i) => {
    const { weight, bias } = projections[i];
    // Conv1d kernel 1: [out, in, 1] → [out, in]
    put(`post_vcp.${name}_proj.weight`, [weight!.shape[0], weight!.shape[1]], weight!.data);
    put(`post_vcp.${name}_proj.bias`, [...bias!.shape], bias!.data);
  });
  put('maps.vcp.logit_scale', [], scalar(tau2!, 'Zero_try.prompt_temp_l1', file));
  linears.forEach(({ weight, bias }, i) => {
    put(`maps.base.linear.${i}.weight`, [...weight!.shape], weight!.data);
    put(`maps.base.linear.${i}.bias`, [...bias!.shape], bias!.data);
  });
  const n = p0!.shape[1];
  const warnings: string[] = [];
  if (deep && proj && norm) {
    const prompts = new Float32Array(p0!.data.length + deep.data.length);
    prompts.set(p0!.data, 0);
    prompts.set(deep.data, p0!.data.length);
    put('dtp.prompts', [1 + deep.shape[0], n, p0!.shape[2]], prompts);
    put('dtp.prompt_proj.weight', [...proj.weight!.shape], proj.weight!.data);
    put('dtp.prompt_proj.bias', [...proj.bias!.shape], proj.bias!.data);
    put('dtp.prompt_norm.weight', [...norm.weight!.shape], norm.weight!.data);
    put('dtp.prompt_norm.bias', [...norm.bias!.shape], norm.bias!.data);
  } else {
    warnings.push(
      `${file}: no deep_prompt_embeddings: a checkpoint trained with total_d_layer_len 0, whose text encoder gets no learned prompts; imported with dtp: false`,
    );
  }
  return {
    tensors,
    config: {
      n_ctx: r,
      deep_prompt_len: n,
      dtp: Boolean(deep),
      pre_vcp: true,
      post_vcp: true,
      heads: PUBLIC_POST_VCP_HEADS,
      attention_scaling: false,
      activation: 'gelu',
      pos_embed_resize: 'bicubic_antialias',
    },
    dims: {
      textWidth,
      visionWidth: projections[1].weight!.shape[0],
      embedDim: linears[0].weight!.shape[0],
      deepPrompts: deep ? deep.shape[0] : 0,
    },
    linearLayers: linears.length,
    warnings,
  };
}

function scalar(t: StateTensor & { data: Float32Array }, name: string, file: string): Float32Array {
  if (t.data.length !== 1)
    throw new UserError(`${file}: "${name}" has shape [${t.shape.join(', ')}], expected a scalar`);
  return t.data;
}

/**
 * Checks the imported weights against a CLIP's widths and depth: the public code builds every
 * module from them, so any mismatch means the checkpoint belongs to another backbone.
 */
export function checkAgainstClip(
  imported: PublicCheckpoint,
  clip: {
    textWidth: number;
    textLayers: number;
    visionWidth: number;
    visionLayers: number;
    embedDim: number;
  },
  file: string,
  clipName: string,
): void {
  const { tensors, dims } = imported;
  const problems: string[] = [];
  const expect = (what: string, got: number, expected: number) => {
    if (got !== expected) problems.push(`${what} is ${got}, the CLIP's is ${expected}`);
  };
  expect('the text width (New_Lan_Embed.prompt_query)', dims.textWidth, clip.textWidth);
  expect('the vision width (Zero_try.k_proj_pre_1)', dims.visionWidth, clip.visionWidth);
  expect('the embedding width (trainable_linearlayer.fc.0)', dims.embedDim, clip.embedDim);
  if (imported.config.dtp)
    expect('the number of deep prompt layers + 1', dims.deepPrompts + 1, clip.textLayers);
  const shapes: [string, number[]][] = [
    ['post_vcp.q_proj.weight', [clip.visionWidth, clip.textWidth]],
    ['post_vcp.k_proj.weight', [clip.visionWidth, clip.visionWidth]],
    ['post_vcp.v_proj.weight', [clip.visionWidth, clip.visionWidth]],
    ['post_vcp.o_proj.weight', [clip.visionWidth, clip.visionWidth]],
    ...Array.from(
      { length: imported.linearLayers },
      (_, i) =>
        [`maps.base.linear.${i}.weight`, [clip.embedDim, clip.visionWidth]] as [string, number[]],
    ),
  ];
  if (imported.config.dtp)
    shapes.push(['dtp.prompt_proj.weight', [clip.textWidth, clip.textWidth]]);
  for (const [name, shape] of shapes) {
    const got = tensors.get(name)!.shape;
    if (got.join() !== shape.join())
      problems.push(`${name} has shape [${got}], expected [${shape}]`);
  }
  if (problems.length > 0) {
    throw new UserError(`${file}: does not fit the CLIP ${clipName}: ${problems.join('; ')}`, {
      hint: 'give the CLIP the checkpoint was trained on with --clip (the paper: ViT-L-14-336, openai/clip-vit-large-patch14-336)',
    });
  }
}
