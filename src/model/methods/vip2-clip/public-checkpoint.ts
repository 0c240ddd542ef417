/**
 * The authors' checkpoints (github.com/kim0806/ViP2-CLIP): the dict their train.py saves,
 * {"prompt_learner": ICA.state_dict(), "Zero_try": FGP.state_dict()}, mapped to this method's
 * parameter names and the config the tensors imply.
 *
 * ICA: ctx_pos / ctx_neg [e, W] (normal / abnormal context), cls_ctx [r, W] (class tokens O),
 * cls_prompter.bias [1, D] (the Meta-Net bias b; absent when built with use_bias=False),
 * cls_prompter.fc.<j>.0.{weight [D/2, D], bias} and .2.{weight [W, D/2], bias} (the r MLPs), and
 * buffers: the frozen token embeddings (token_prefix_*, token_middle_* = the state word,
 * token_suffix_*) and token ids (tokenized_prompts_*). FGP: q_proj_pre, k_proj_pre_1,
 * v_proj_pre_1, proj_post_t (Conv1d k=1, weight [D, D, 1]) and the unused prompt_temp_l1.
 */
import { UserError } from '../../../errors.js';

/** A tensor as the .pth reader hands it over (floats widened to float32). */
export interface StateTensor {
  readonly kind: 'tensor';
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array;
}

type Dict = Map<unknown, unknown>;

export interface PublicVip2Checkpoint {
  /** Checkpoint tensors under this method's names. */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  /** Config fields the tensors determine. */
  config: { n_ctx: number; n_cls: number; meta_net_bias: boolean };
  dims: { textWidth: number; embedDim: number; hidden: number };
  /** The state-word embedding of the normal prompt (token_middle_pos) [W]: tells the quirk. */
  normalStateEmbedding: Float32Array | null;
  /** Warnings (ignored tensors). */
  warnings: string[];
}

const PARTS = ['prompt_learner', 'Zero_try'] as const;
const PROJECTIONS = [
  ['q', 'q_proj_pre'],
  ['k', 'k_proj_pre_1'],
  ['v', 'v_proj_pre_1'],
  ['o', 'proj_post_t'],
] as const;

const isTensor = (value: unknown): value is StateTensor =>
  typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'tensor';

function describe(value: unknown): string {
  if (isTensor(value)) return `tensor [${value.shape.join(', ')}]`;
  if (value instanceof Map) return 'dict';
  if (Array.isArray(value)) return 'list';
  return value === null ? 'None' : typeof value;
}

/** The state, unwrapped from {'state_dict' | 'model' | 'checkpoint': …} if needed. */
function unwrap(state: unknown, file: string): Dict {
  if (!(state instanceof Map))
    throw new UserError(
      `${file}: not a ViP²-CLIP checkpoint: it holds a ${describe(state)}, not a dict`,
    );
  if (PARTS.some((p) => state.has(p))) return state;
  for (const key of ['state_dict', 'model', 'checkpoint']) {
    const inner = state.get(key);
    if (inner instanceof Map && PARTS.some((p) => inner.has(p))) return inner;
  }
  return state;
}

/**
 * Maps the dict read from a ViP²-CLIP .pth to checkpoint tensors; every missing or malformed key
 * is named in one UserError.
 */
export function fromPublicVip2Checkpoint(state: unknown, file: string): PublicVip2Checkpoint {
  const root = unwrap(state, file);
  const problems: string[] = [];
  const part = (name: string): Dict | undefined => {
    const value = root.get(name);
    if (value === undefined) problems.push(`"${name}" (missing)`);
    else if (!(value instanceof Map)) problems.push(`"${name}" (a ${describe(value)}, not a dict)`);
    else return value;
    return undefined;
  };
  const ica = part('prompt_learner');
  const fgp = part('Zero_try');
  const tensor = (dict: Dict | undefined, where: string, key: string, rank: number) => {
    if (!dict) return undefined;
    const value = dict.get(key);
    const name = `${where}.${key}`;
    if (value === undefined) problems.push(`"${name}" (missing)`);
    else if (!isTensor(value) || !(value.data instanceof Float32Array))
      problems.push(`"${name}" (a ${describe(value)}, expected a float tensor)`);
    else if (value.shape.length !== rank)
      problems.push(`"${name}" (shape [${value.shape.join(', ')}], expected rank ${rank})`);
    else return value as StateTensor & { data: Float32Array };
    return undefined;
  };
  const ctxPos = tensor(ica, 'prompt_learner', 'ctx_pos', 2);
  const ctxNeg = tensor(ica, 'prompt_learner', 'ctx_neg', 2);
  const clsCtx = tensor(ica, 'prompt_learner', 'cls_ctx', 2);
  const hasBias = ica?.has('cls_prompter.bias') ?? false;
  const bias = hasBias ? tensor(ica, 'prompt_learner', 'cls_prompter.bias', 2) : undefined;
  const r = clsCtx?.shape[0] ?? 0;
  const mlps = Array.from({ length: r }, (_, j) => ({
    fc1w: tensor(ica, 'prompt_learner', `cls_prompter.fc.${j}.0.weight`, 2),
    fc1b: tensor(ica, 'prompt_learner', `cls_prompter.fc.${j}.0.bias`, 1),
    fc2w: tensor(ica, 'prompt_learner', `cls_prompter.fc.${j}.2.weight`, 2),
    fc2b: tensor(ica, 'prompt_learner', `cls_prompter.fc.${j}.2.bias`, 1),
  }));
  if (ica?.has(`cls_prompter.fc.${r}.0.weight`))
    problems.push(
      `"prompt_learner.cls_prompter.fc.${r}" (more Meta-Net MLPs than the ${r} class tokens of cls_ctx)`,
    );
  const projections = PROJECTIONS.map(([ours, theirs]) => ({
    ours,
    weight: tensor(fgp, 'Zero_try', `${theirs}.weight`, 3),
    bias: tensor(fgp, 'Zero_try', `${theirs}.bias`, 1),
  }));
  const middle = ica?.get('token_middle_pos');
  if (problems.length === 0) {
    const w = ctxPos!.shape[1];
    const d = projections[0].weight!.shape[0];
    const h = mlps[0]?.fc1w?.shape[0] ?? 0;
    const expect = (ok: boolean, what: string) => {
      if (!ok) problems.push(what);
    };
    expect(
      ctxNeg!.shape.join() === ctxPos!.shape.join(),
      `"prompt_learner.ctx_neg" (shape [${ctxNeg!.shape.join(', ')}], ctx_pos has [${ctxPos!.shape.join(', ')}])`,
    );
    expect(
      clsCtx!.shape[1] === w,
      `"prompt_learner.cls_ctx" (width ${clsCtx!.shape[1]}, ctx_pos has ${w})`,
    );
    if (bias)
      expect(
        bias.shape.join() === `1,${d}`,
        `"prompt_learner.cls_prompter.bias" (shape [${bias.shape.join(', ')}], expected [1, ${d}])`,
      );
    mlps.forEach(({ fc1w, fc1b, fc2w, fc2b }, j) => {
      const at = `prompt_learner.cls_prompter.fc.${j}`;
      expect(
        fc1w!.shape.join() === `${h},${d}`,
        `"${at}.0.weight" (shape [${fc1w!.shape.join(', ')}], expected [${h}, ${d}])`,
      );
      expect(fc1b!.shape[0] === h, `"${at}.0.bias" (length ${fc1b!.shape[0]}, expected ${h})`);
      expect(
        fc2w!.shape.join() === `${w},${h}`,
        `"${at}.2.weight" (shape [${fc2w!.shape.join(', ')}], expected [${w}, ${h}])`,
      );
      expect(fc2b!.shape[0] === w, `"${at}.2.bias" (length ${fc2b!.shape[0]}, expected ${w})`);
    });
    expect(
      h === Math.floor(d / 2),
      `"prompt_learner.cls_prompter.fc.0.0.weight" (hidden width ${h}; this port's Meta-Net hides D / 2 = ${Math.floor(d / 2)})`,
    );
    for (const { ours, weight, bias: b } of projections) {
      const name = PROJECTIONS.find(([o]) => o === ours)![1];
      expect(
        weight!.shape.join() === `${d},${d},1`,
        `"Zero_try.${name}.weight" (shape [${weight!.shape.join(', ')}], expected [${d}, ${d}, 1])`,
      );
      expect(b!.shape[0] === d, `"Zero_try.${name}.bias" (length ${b!.shape[0]}, expected ${d})`);
    }
  }
  if (problems.length > 0) {
    throw new UserError(
      `${file}: not a ViP²-CLIP checkpoint of the public train.py: ${problems.length === 1 ? 'key' : 'keys'} ${problems.join(', ')}`,
      {
        hint: `top-level keys found: ${[...root.keys()].map(String).join(', ') || 'none'}; expected prompt_learner (ICA) and Zero_try (FGP)`,
      },
    );
  }

  const tensors: PublicVip2Checkpoint['tensors'] = new Map();
  const put = (name: string, shape: readonly number[], data: Float32Array) =>
    tensors.set(name, { shape: [...shape], data });
  put('ica.context_normal', ctxPos!.shape, ctxPos!.data);
  put('ica.context_abnormal', ctxNeg!.shape, ctxNeg!.data);
  put('ica.class_tokens', clsCtx!.shape, clsCtx!.data);
  if (bias) put('ica.meta_net.bias', [bias.shape[1]], bias.data);
  mlps.forEach(({ fc1w, fc1b, fc2w, fc2b }, j) => {
    put(`ica.meta_net.${j}.fc1.weight`, fc1w!.shape, fc1w!.data);
    put(`ica.meta_net.${j}.fc1.bias`, fc1b!.shape, fc1b!.data);
    put(`ica.meta_net.${j}.fc2.weight`, fc2w!.shape, fc2w!.data);
    put(`ica.meta_net.${j}.fc2.bias`, fc2b!.shape, fc2b!.data);
  });
  for (const { ours, weight, bias: b } of projections) {
    // Conv1d kernel 1: [out, in, 1] → [out, in]
    put(`fgp.${ours}_proj.weight`, [weight!.shape[0], weight!.shape[1]], weight!.data);
    put(`fgp.${ours}_proj.bias`, b!.shape, b!.data);
  }
  const warnings: string[] = [];
  const known = new Set([
    'prompt_temp_l1',
    ...PROJECTIONS.flatMap(([, t]) => [`${t}.weight`, `${t}.bias`]),
  ]);
  const extra = [...(fgp?.keys() ?? [])].map(String).filter((k) => !known.has(k));
  if (extra.length > 0)
    warnings.push(`${file}: Zero_try has tensors this port does not use: ${extra.join(', ')}`);
  const w = ctxPos!.shape[1];
  const normalStateEmbedding =
    isTensor(middle) && middle.data instanceof Float32Array && middle.data.length === w
      ? middle.data
      : null;
  return {
    tensors,
    config: { n_ctx: ctxPos!.shape[0], n_cls: r, meta_net_bias: Boolean(bias) },
    dims: {
      textWidth: w,
      embedDim: projections[0].weight!.shape[0],
      hidden: mlps[0].fc1w!.shape[0],
    },
    normalStateEmbedding,
    warnings,
  };
}
