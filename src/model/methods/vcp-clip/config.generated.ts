// Generated from schemas/methods/vcp-clip.schema.json by scripts/gen-config-types.mjs.
// Do not edit: change the schema and run `npm run gen:config-types`.

/** VCP-CLIP config, resolved: every field filled in (defaults from the schema). */
export interface VcpClipConfig {
  /** Residual-block activation of both CLIP encoders: gelu (public VCP-CLIP code, default) or quick_gelu (as CLIP was trained). Default: "gelu". */
  readonly activation: 'gelu' | 'quick_gelu';
  /** CLIP backbone: a known name (ViT-L-14-336, ViT-L-14, ViT-B-16, their openai/… hub ids), the bundled tiny-clip, or a Hugging Face CLIP checkpoint directory (relative to the spec file). Default: "ViT-L-14-336". */
  readonly backbone: string;
  /** Input resolution S in pixels; a multiple of the backbone's patch size. Default: 518. */
  readonly image_size: number;
  /** Resize of the vision positional embeddings when image_size differs from the backbone's (PyTorch F.interpolate, align_corners=false): bicubic_antialias (antialias=True, the public VCP-CLIP code, default), bicubic (Hugging Face's interpolate_pos_encoding) or bilinear. Default: "bicubic_antialias". */
  readonly pos_embed_resize: 'bicubic_antialias' | 'bicubic' | 'bilinear';
  /** 1-based vision blocks whose outputs feed the maps. Default: [6,12,18,24]. */
  readonly layers: readonly number[];
  /** Prompt templates, each with one {state} and one {cls} slot. Default: ["a photo of a {state} {cls}"]. */
  readonly templates: readonly string[];
  /** [normal, abnormal] state word pairs, ensembled with the templates. Default: [["good","damaged"]]. */
  readonly state_words: readonly (readonly [string, string])[];
  /** r: learnable vectors replacing [cls]. Default: 2. */
  readonly n_ctx: number;
  /** n: deep text prompt vectors per text layer. Default: 1. */
  readonly deep_prompt_len: number;
  /** Deep text prompting on/off. Default: true. */
  readonly dtp: boolean;
  /** Where the deep prompts sit: pre (after SOS, default) or post (before EOS). Default: "pre". */
  readonly dtp_position: 'pre' | 'post';
  /** Dropout on the projected deep prompts, training only. Default: 0.1. */
  readonly dtp_dropout: number;
  /** Pre-VCP: global visual context → category vectors; needs text width = embed dim. Default: true. */
  readonly pre_vcp: boolean;
  /** Post-VCP: fine-grained visual context → text embeddings, and its map branch. Default: true. */
  readonly post_vcp: boolean;
  /** Post-VCP attention heads; must divide the vision width. Default: 8. */
  readonly heads: number;
  /** 1/√d scaling in Post-VCP attention; the public code has none. Default: false. */
  readonly attention_scaling: boolean;
  /** Weight of the VCP map in the fused map: 0.75 paper (default), 0.8 public test script. Default: 0.75. Evaluation only. */
  readonly alpha: number;
  /** Gaussian smoothing σ of the final map in pixels; 0 disables. Default: 8. Evaluation only. */
  readonly sigma: number;
  /** Image score rule: topk-mean (public code, default) or max (paper appendix B.4). Default: "topk-mean". Evaluation only. */
  readonly image_score: 'topk-mean' | 'max';
  /** k of the topk-mean image score. Default: 2000. Evaluation only. */
  readonly topk: number;
  /** Learning rate of every learnable tensor except the temperatures. Default: 0.00004. */
  readonly lr: number;
  /** Learning rate of the temperatures τ₁, τ₂. Default: 0.01. */
  readonly lr_tau: number;
  /** Adam betas. Default: [0.5,0.999]. */
  readonly betas: readonly [number, number];
  /** Seed of the parameter initialisation and data order (32-bit); with `seeds: <count>` the first seed. Default: 333. */
  readonly seed: number;
}

/** VCP-CLIP config as written: every field optional. */
export type VcpClipConfigInput = Partial<VcpClipConfig>;
