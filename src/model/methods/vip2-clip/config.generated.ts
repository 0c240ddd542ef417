// Generated from schemas/methods/vip2-clip.schema.json by scripts/gen-config-types.mjs.
// Do not edit: change the schema and run `npm run gen:config-types`.

/** ViP²-CLIP config, resolved: every field filled in (defaults from the schema). */
export interface Vip2ClipConfig {
  /** Residual-block activation of both CLIP encoders: quick_gelu (the public code, default; as CLIP was trained) or gelu. Default: "quick_gelu". */
  readonly activation: 'gelu' | 'quick_gelu';
  /** Interpolation of the positional grid to the input's grid (align_corners = false): bilinear without antialiasing (the public code, default), bicubic_antialias (VCP-CLIP's) or bicubic. Default: "bilinear". */
  readonly pos_embed_resize: 'bicubic_antialias' | 'bicubic' | 'bilinear';
  /** CLIP backbone: a known name (ViT-L-14-336, ViT-L-14, ViT-B-16, their openai/… hub ids) or a Hugging Face CLIP checkpoint directory (relative to the spec file). Default: "ViT-L-14-336". */
  readonly backbone: string;
  /** Input resolution S in pixels; a multiple of the backbone's patch size. Default: 518. */
  readonly image_size: number;
  /** 1-based vision blocks whose ln_post + projection outputs feed FGP and UTPA. Default: [6,12,18,24]. */
  readonly layers: readonly number[];
  /** e: learnable context vectors per prompt (7 in the public scripts; 9 is its argparse default). Default: 7. */
  readonly n_ctx: number;
  /** r: image-conditioned class tokens, one Meta-Net MLP each. Default: 3. */
  readonly n_cls: number;
  /** The normal prompt's state word: damaged (the public code builds the normal prompt from the abnormal prompt's token ids, so both say "damaged"; default) or good (the paper's intent). Default: "damaged". */
  readonly normal_state_word: 'damaged' | 'good';
  /** ln_post before the projection of the global feature: false = the public code's quirk (class token · projection; default), true = CLIP's image embedding (the paper's global feature). Default: false. */
  readonly global_ln_post: boolean;
  /** The learnable bias b added to the global feature before the Meta-Net. Default: true. */
  readonly meta_net_bias: boolean;
  /** FGP attention heads; must divide the joint embedding width. Default: 8. */
  readonly heads: number;
  /** Fixed UTPA temperature (not learnable). Default: 0.07. */
  readonly temperature: number;
  /** K: patches per layer whose scores make the image logits (capped at the patch count); shapes the training loss too. Default: 50. */
  readonly topk: number;
  /** Gaussian smoothing σ of the test map in pixels; 0 disables. Default: 8. Evaluation only. */
  readonly sigma: number;
  /** Learning rate of the ICA parameters (contexts, class tokens, bias, Meta-Net). Default: 0.001. */
  readonly lr: number;
  /** FGP learning rate as a multiple of lr (the public code: 0.01); 0 freezes FGP. Default: 0.01. */
  readonly fgp_lr_scale: number;
  /** Adam betas (ε 1e-8, no weight decay, constant learning rates). Default: [0.9,0.999]. */
  readonly betas: readonly [number, number];
  /** Seed of the parameter initialisation and data order; with `seeds: <count>` the first seed. Default: 111. */
  readonly seed: number;
}

/** ViP²-CLIP config as written: every field optional. */
export type Vip2ClipConfigInput = Partial<Vip2ClipConfig>;
