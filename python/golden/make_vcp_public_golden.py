"""Golden values for VCP-CLIP from the authors' own implementation (github.com/xiaozhen228/VCP-CLIP).

Usage: make_vcp_public_golden.py PUBLIC_CODE_DIR [--commit SHA] [--out tests/fixtures/vcp-clip-public]

PUBLIC_CODE_DIR is a local copy of the public repository (never committed here, never downloaded
by tests or CI); its commit is recorded in golden.json and README.md (from `git rev-parse HEAD`
in that directory, or --commit). Needs a Python with torch, transformers, safetensors, tokenizers,
numpy, scipy, scikit-learn, Pillow, ftfy, regex, tqdm and packaging: the hash-locked
.venv-golden of python/README.md (.venv-golden/bin/python python/golden/make_vcp_public_golden.py DIR).

What runs is the public code's own modules: Load_CLIP (OpenAI weights -> its CLIP, with its
fp16 round trip, resize_pos_embed and add_word_embedding), Context_Prompting (Pre-VCP),
Prompt_Ensemble + CLIP.encode_text (UTP + DTP), Zero_Parameter (Post-VCP), train.py's LinearLayer,
_freeze_stages and _load_stages, utils/loss.py's FocalLoss and BinaryDiceLoss, and train.py's
optimizer groups. The few lines that live inline in test.py / train.py (the per-layer map loop,
the fusion, the top-k score, the loss sum, the checkpoint dict) are repeated below as written there.

The tiny CLIP (written to <out>/tiny-clip in Hugging Face format, float16 storage, every value
float16-exact because the public loader rounds the weights through float16):
vision width 64, 2 blocks, 1 head, patch 4, native 16 px (grid 4); text width 64, 3 blocks,
1 head, vocabulary of assets/clip/tiny-clip (764 tokens); embed dim 64. Heads are
width // 64 because the public CLIP hard-codes that. The same weights go into the public CLIP
under OpenAI's names through a TorchScript file, as Load_CLIP expects; the conversion is checked
against transformers' CLIPModel at the native size (text and image features, max |diff| printed).

Stubs, visible and limited to what cannot run on a CPU-only machine without these packages:
- torchvision (not needed by any computation here): Compose/Resize/CenterCrop/ToTensor/Normalize
  written with Pillow and numpy as torchvision applies them to a PIL image (Resize on a PIL
  image is PIL's resize with the given filter); FrozenBatchNorm2d unused. albumentations,
  imported by utils/dataset.py for training augmentation, is an empty module.
- pkg_resources.packaging -> the packaging module.
- VisionTransformer.forward does `torch.zeros([H, H]).to('cuda')` and sums block 12's attention
  into it (a value it never uses): `.to('cuda')` is mapped to the CPU, and since a 2-block tower
  has no block 12, the visual transformer returns a zero attention map in its place.
- The tokenizer handed to Prompt_Ensemble: the public `tokenize` uses OpenAI's 49408-token BPE;
  the tiny CLIP has a 764-token vocabulary, so prompts are tokenised with the fixture's tokenizer
  and laid out as `tokenize` does (SOS, tokens, EOS, zeros to 77), with SOS/EOS/<|class|> given
  the ids encode_text looks for (49406/49407/49408) and the public token embedding holding the
  tiny rows at those ids. Our tokenizer is tested against the real one elsewhere.
- quick_gelu: the public blocks are built with nn.GELU; for the quick_gelu cases every block's
  `mlp.gelu` is replaced by the public module's own QuickGELU (its commented-out alternative).
- Training: prompt dropout p = 0 (deterministic); torch.cuda.amp.autocast (CUDA only) omitted,
  so everything is float32.
- Scores: test.py takes the top 2000 pixels (np.partition, kth=-2000); the tiny maps have fewer,
  so the same code runs with k = TOPK (golden cases, config topk) or k = S² (predict/, what
  vcp-exp's default topk 2000 becomes when capped at the pixel count).

Cases the public code cannot run, kept with the spec-written reference (make_vcp_golden.py):
DTP position 'post' and 1/sqrt(d) attention scaling (the public code has neither), and the
Post-VCP attention maps (internal to Zero_Parameter.forward, never returned).

Writes <out>/: tiny-clip/{config.json, model.safetensors, tokenizer.json}; public.pth (random
non-trivial VCP-CLIP parameters, saved as train.py saves a checkpoint); public-shallow.pth
(the same without deep prompts: total_d_layer_len 0); adam.<act>.<S>.pth (after one Adam step);
grads.<act>.<S>.pth (the gradients of that step, float16, for the first Adam case);
golden.safetensors (inputs and outputs per case, below); golden.json; predict/ (an image that
needs resizing, and what the public forward gives for it); legacy.pth, missing-keys.pth (for
the importer's errors), not-torch.zip (a zip without data.pkl); README.md.
Per case <act>.<S> (act gelu | quick_gelu, S in SIZES) in golden.safetensors:
  global [B, D], text [B, 2, D], refined.<l> [B, 2, Dv] (Post-VCP output per layer l),
  map.base.<l>, map.vcp.<l> [B, S, S] (abnormal channel of the 2-class softmax), mean.base,
  mean.vcp [B, S, S], fused [B, S, S] (ALPHA weighting the VCP map, as test.py's alpha=0.2 on
  the baseline), score [B] (top-k mean of both branch maps); loss in golden.json.
"""

import argparse
import copy
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import types
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from scipy.ndimage import gaussian_filter
from tokenizers import Tokenizer
from transformers import CLIPConfig, CLIPModel

ROOT = Path(__file__).resolve().parents[2]
TINY_TOKENIZER = ROOT / "assets" / "clip" / "tiny-clip" / "tokenizer.json"
SEED = 20240717
CONTEXT = 77

WIDTH, VISION_LAYERS, PATCH, NATIVE = 64, 2, 4, 16
TEXT_LAYERS, MLP = 3, 256
R, N_DEEP, POST_HEADS = 2, 1, 8
LAYERS = [1, 2]
B = 2
SIZES = [16, 24, 12]  # native (grid 4), upsampled (grid 6), downsampled (grid 3)
ACTIVATIONS = ["gelu", "quick_gelu"]
ADAM_CASES = [("gelu", 24), ("quick_gelu", 16)]
QK_GAIN = 8.0
# Prompt_Ensemble with two templates per state (its template lists; train.py keeps one each), and
# Zero_Parameter with 4 heads (its num_heads; train.py keeps 8): ablations the modules support.
ENSEMBLE_CASES = [("gelu", 24)]
ENSEMBLE_CONFIG_TEMPLATES = ["a photo of a {state} {cls}", "a close-up photo of the {state} {cls}."]
ENSEMBLE_TEMPLATES = tuple([t.replace("{state}", w).replace("{cls}", "<|class|>") for t in ENSEMBLE_CONFIG_TEMPLATES]
                           for w in ("good", "damaged"))
HEADS4_CASES = [("gelu", 24)]
SHALLOW_CASES = [("gelu", 24)]
NO_GLOBAL_CASES = [("gelu", 24)]
ALPHA = 0.8  # test.py: alpha = 0.2 on the baseline map
TOPK = 50
LR, LR_TAU = 1e-3, 0.01  # train.py hard-codes 0.01 for the temperatures
SIGMA = 2.0  # test.py smooths with 8; the tiny maps are 24 px
PREDICT_SIZE = 24
PREDICT_IMAGE = (37, 29)  # width, height: resized to S×S with Pillow's bicubic, as _transform_test

CONFIG = {
    "activation": "gelu", "pos_embed_resize": "bicubic_antialias", "layers": LAYERS,
    "templates": ["a photo of a {state} {cls}"], "state_words": [["good", "damaged"]],
    "n_ctx": R, "deep_prompt_len": N_DEEP, "dtp": True, "dtp_position": "pre", "dtp_dropout": 0,
    "pre_vcp": True, "post_vcp": True, "heads": POST_HEADS, "attention_scaling": False,
    "alpha": ALPHA, "sigma": SIGMA, "image_score": "topk-mean", "topk": TOPK,
    "lr": LR, "lr_tau": LR_TAU, "betas": [0.5, 0.999],
}


# ---------------------------------------------------------------- stubs (see the docstring)

def install_stubs() -> None:
    import packaging.version

    class Compose:
        def __init__(self, transforms):
            self.transforms = transforms

        def __call__(self, x):
            for t in self.transforms:
                x = t(x)
            return x

    class Resize:
        def __init__(self, size, interpolation=Image.BICUBIC):
            self.size, self.interpolation = size, interpolation

        def __call__(self, image):
            h, w = self.size if isinstance(self.size, (tuple, list)) else (self.size, self.size)
            return image.resize((w, h), self.interpolation)

    class CenterCrop:
        def __init__(self, size):
            self.size = size if isinstance(size, (tuple, list)) else (size, size)

        def __call__(self, image):
            assert image.size == (self.size[1], self.size[0]), "only the no-op crop after Resize((n, n)) is stubbed"
            return image

    class ToTensor:
        def __call__(self, image):
            return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()

    class Normalize:
        def __init__(self, mean, std):
            self.mean, self.std = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)

        def __call__(self, x):
            return (x - self.mean) / self.std

    class Unused:
        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, *args, **kwargs):
            raise RuntimeError("torchvision stub: not used by the golden script")

    transforms = types.ModuleType("torchvision.transforms")
    transforms.Compose, transforms.Resize, transforms.CenterCrop = Compose, Resize, CenterCrop
    transforms.ToTensor, transforms.Normalize, transforms.RandomResizedCrop = ToTensor, Normalize, Unused
    transforms.InterpolationMode = types.SimpleNamespace(BICUBIC=Image.BICUBIC)
    ops_misc = types.ModuleType("torchvision.ops.misc")
    ops_misc.FrozenBatchNorm2d = Unused
    torchvision = types.ModuleType("torchvision")
    torchvision.transforms = transforms
    torchvision.ops = types.ModuleType("torchvision.ops")
    torchvision.ops.misc = ops_misc
    sys.modules.update({
        "torchvision": torchvision, "torchvision.transforms": transforms,
        "torchvision.ops": torchvision.ops, "torchvision.ops.misc": ops_misc,
        "albumentations": types.ModuleType("albumentations"),
    })
    pkg_resources = types.ModuleType("pkg_resources")
    pkg_resources.packaging = packaging
    sys.modules["pkg_resources"] = pkg_resources

    if not torch.cuda.is_available():
        original_to = torch.Tensor.to

        def to_cpu_for_cuda(self, *args, **kwargs):
            if args and isinstance(args[0], str) and args[0].startswith("cuda"):
                args = ("cpu",) + args[1:]
            if isinstance(kwargs.get("device"), str) and kwargs["device"].startswith("cuda"):
                kwargs["device"] = "cpu"
            return original_to(self, *args, **kwargs)

        torch.Tensor.to = to_cpu_for_cuda


def with_dummy_block12_attention(forward):
    """The public vision Transformer keeps block 12's attention only; a 2-block tower has none."""
    def wrapped(x, out_layers=(3, 6, 9)):
        x, out_attn, out_tokens = forward(x, list(out_layers))
        if not out_attn:
            out_attn = [torch.zeros(x.shape[1], x.shape[0], x.shape[0], dtype=x.dtype)]
        return x, out_attn, out_tokens
    return wrapped


# ---------------------------------------------------------------- the tiny CLIP in both formats

def tiny_config(vocab: int, bos: int, eos: int) -> CLIPConfig:
    return CLIPConfig(
        text_config=dict(
            vocab_size=vocab, hidden_size=WIDTH, intermediate_size=MLP, num_hidden_layers=TEXT_LAYERS,
            num_attention_heads=WIDTH // 64, max_position_embeddings=CONTEXT, hidden_act="gelu",
            layer_norm_eps=1e-5, bos_token_id=bos, eos_token_id=eos, pad_token_id=eos, projection_dim=WIDTH,
        ),
        vision_config=dict(
            image_size=NATIVE, patch_size=PATCH, hidden_size=WIDTH, intermediate_size=MLP,
            num_hidden_layers=VISION_LAYERS, num_attention_heads=WIDTH // 64, hidden_act="gelu",
            layer_norm_eps=1e-5, projection_dim=WIDTH,
        ),
        projection_dim=WIDTH,
    )


def tiny_weights(config: CLIPConfig, gen: torch.Generator) -> dict:
    model = CLIPModel(config)
    weights = {}
    for name, p in model.state_dict().items():
        noise = torch.randn(p.shape, generator=gen) * (0.3 if "norm" in name else 0.05)
        weights[name] = (p.float() + noise).half().float()  # float16-exact: Load_CLIP rounds through fp16
    weights["logit_scale"] = torch.tensor(math.log(1 / 0.07)).half().float()
    return weights


def openai_state_dict(hf: dict, vocab_rows: dict) -> dict:
    """Hugging Face CLIPModel names -> OpenAI CLIP names (what Load_CLIP reads)."""
    sd = {}
    v, t = "vision_model.", "text_model."
    sd["visual.conv1.weight"] = hf[v + "embeddings.patch_embedding.weight"]
    sd["visual.class_embedding"] = hf[v + "embeddings.class_embedding"]
    sd["visual.positional_embedding"] = hf[v + "embeddings.position_embedding.weight"]
    sd["visual.ln_pre.weight"], sd["visual.ln_pre.bias"] = hf[v + "pre_layrnorm.weight"], hf[v + "pre_layrnorm.bias"]
    sd["visual.ln_post.weight"], sd["visual.ln_post.bias"] = hf[v + "post_layernorm.weight"], hf[v + "post_layernorm.bias"]
    sd["visual.proj"] = hf["visual_projection.weight"].t().contiguous()

    def blocks(prefix_hf, prefix_oa, n):
        for i in range(n):
            a, b = f"{prefix_hf}encoder.layers.{i}.", f"{prefix_oa}transformer.resblocks.{i}."
            sd[b + "attn.in_proj_weight"] = torch.cat([hf[a + f"self_attn.{x}_proj.weight"] for x in "qkv"])
            sd[b + "attn.in_proj_bias"] = torch.cat([hf[a + f"self_attn.{x}_proj.bias"] for x in "qkv"])
            sd[b + "attn.out_proj.weight"], sd[b + "attn.out_proj.bias"] = hf[a + "self_attn.out_proj.weight"], hf[a + "self_attn.out_proj.bias"]
            sd[b + "ln_1.weight"], sd[b + "ln_1.bias"] = hf[a + "layer_norm1.weight"], hf[a + "layer_norm1.bias"]
            sd[b + "ln_2.weight"], sd[b + "ln_2.bias"] = hf[a + "layer_norm2.weight"], hf[a + "layer_norm2.bias"]
            sd[b + "mlp.c_fc.weight"], sd[b + "mlp.c_fc.bias"] = hf[a + "mlp.fc1.weight"], hf[a + "mlp.fc1.bias"]
            sd[b + "mlp.c_proj.weight"], sd[b + "mlp.c_proj.bias"] = hf[a + "mlp.fc2.weight"], hf[a + "mlp.fc2.bias"]

    blocks(v, "visual.", VISION_LAYERS)
    blocks(t, "", TEXT_LAYERS)
    tiny = hf[t + "embeddings.token_embedding.weight"]
    token = torch.zeros(49408, WIDTH)
    for ours, theirs in vocab_rows.items():
        token[theirs] = tiny[ours]
    sd["token_embedding.weight"] = token
    sd["positional_embedding"] = hf[t + "embeddings.position_embedding.weight"]
    sd["ln_final.weight"], sd["ln_final.bias"] = hf[t + "final_layer_norm.weight"], hf[t + "final_layer_norm.bias"]
    sd["text_projection"] = hf["text_projection.weight"].t().contiguous()
    sd["logit_scale"] = hf["logit_scale"]
    return sd


def write_torchscript(state: dict, path: Path) -> None:
    """A TorchScript archive whose state_dict() is `state`: what Load_CLIP's torch.jit.load reads."""
    class Holder(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    root = Holder()
    for name, value in state.items():
        *path_parts, leaf = name.split(".")
        module = root
        for part in path_parts:
            if not hasattr(module, part):
                module.add_module(part, torch.nn.Module())
            module = getattr(module, part)
        module.register_parameter(leaf, torch.nn.Parameter(value.clone(), requires_grad=False))
    torch.jit.save(torch.jit.script(root), str(path))


class TinyTokenize:
    """`tokenize` of models/model_CLIP.py with the fixture's vocabulary (see the docstring)."""

    def __init__(self, tokenizer: Tokenizer, bos: int, eos: int):
        self.tokenizer, self.bos, self.eos = tokenizer, bos, eos

    def __call__(self, texts, context_length=CONTEXT, truncate=False):
        texts = [texts] if isinstance(texts, str) else texts
        result = torch.zeros(len(texts), context_length, dtype=torch.int)
        for i, text in enumerate(texts):
            before, after = text.split("<|class|>")
            ids = [49406]
            ids += self.tokenizer.encode(before, add_special_tokens=False).ids
            ids += [49408]
            ids += self.tokenizer.encode(after, add_special_tokens=False).ids
            ids += [49407]
            result[i, : len(ids)] = torch.tensor(ids)
        return result


# ---------------------------------------------------------------- the public forward, as test.py / train.py run it

class Public:
    def __init__(self, code: Path, jit_path: Path, tokenize):
        sys.path.insert(0, str(code))
        os.chdir(code)  # the public tokenizer opens ./models/bpe_simple_vocab_16e6.txt.gz, as when run from its root
        import train as public_train  # noqa: E402  (module-level code only imports)
        from models.model_CLIP import Load_CLIP
        from models.post_vcp import Zero_Parameter
        from models.pre_vcp import Context_Prompting
        from models.prompt_ensemble import Prompt_Ensemble
        from models.transformer import QuickGELU
        from utils.loss import BinaryDiceLoss, FocalLoss

        self.train_module, self.Load_CLIP = public_train, Load_CLIP
        self.Zero_Parameter, self.Context_Prompting, self.Prompt_Ensemble = Zero_Parameter, Context_Prompting, Prompt_Ensemble
        self.QuickGELU, self.FocalLoss, self.BinaryDiceLoss = QuickGELU, FocalLoss, BinaryDiceLoss
        self.jit_path, self.tokenize = jit_path, tokenize
        self.model_configs = {
            "embed_dim": WIDTH,
            "vision_cfg": {"image_size": NATIVE, "layers": VISION_LAYERS, "width": WIDTH, "patch_size": PATCH},
            "text_cfg": {"context_length": CONTEXT, "vocab_size": 49408, "width": WIDTH, "heads": WIDTH // 64, "layers": TEXT_LAYERS},
        }

    def clip(self, size: int, activation: str, deep: bool = True):
        model, _, preprocess_test = self.Load_CLIP(size, str(self.jit_path), device="cpu", deep_prompt_len=N_DEEP,
                                                   total_d_layer_len=TEXT_LAYERS - 1 if deep else 0)
        model.visual.transformer.forward = with_dummy_block12_attention(model.visual.transformer.forward)
        if activation == "quick_gelu":
            for tower in (model.visual.transformer, model.transformer):
                for block in tower.resblocks:
                    block.mlp.gelu = self.QuickGELU()
        model.prompt_dropout.p = 0.0
        return model, preprocess_test

    def modules(self, heads=POST_HEADS, templates=None):
        """train.py's trainable modules (its constructors, default inits); `heads` and `templates`
        are Zero_Parameter's num_heads and Prompt_Ensemble's template lists (train.py keeps the defaults)."""
        linear = self.train_module.LinearLayer(WIDTH, WIDTH, len(LAYERS), "ViT-tiny")
        pre = self.Context_Prompting(self.model_configs, cla_len=R)
        post = self.Zero_Parameter(dim_v=WIDTH, dim_t=WIDTH, dim_out=WIDTH, num_heads=heads)
        prompts = self.Prompt_Ensemble(R, self.tokenize)
        if templates is not None:
            prompts.prompt_templates_normal, prompts.prompt_templates_abnormal = templates
        return linear, pre, post, prompts

    def load(self, checkpoint: dict, size: int, activation: str, deep: bool = True, heads=POST_HEADS, templates=None):
        """As test.py: build, then load the checkpoint into every part."""
        checkpoint = copy.deepcopy(checkpoint)  # _load_stages shares the tensors' storage with the model
        model, preprocess = self.clip(size, activation, deep)
        linear, pre, post, prompts = self.modules(heads, templates)
        linear.load_state_dict(checkpoint["trainable_linearlayer"], strict=False)
        pre.load_state_dict(checkpoint["New_Lan_Embed"])
        post.load_state_dict(checkpoint["Zero_try"], strict=False)
        self.train_module._load_stages(model, checkpoint, "prompt")
        return model, linear, pre, post, prompts, preprocess

    @staticmethod
    def forward(model, linear, pre, post, prompts, image, size, use_global=True):
        """test.py's loop body (maps with the 2-class softmax kept, for the loss)."""
        image_features, patch_tokens = model.encode_image(image, LAYERS)
        class_token = pre.before_extract_feat(patch_tokens, image_features.clone(), use_global=use_global)
        text_embeddings = prompts.forward_ensemble(model, class_token, "cpu")
        text_embeddings = text_embeddings.permute(0, 2, 1)
        maps_new, refined = [], []
        for layer in range(len(patch_tokens)):
            dense_feature = patch_tokens[layer][:, 1:, :].clone()
            dense_feature = dense_feature / dense_feature.norm(dim=-1, keepdim=True)
            F_s_a, F_t_a = post(text_embeddings.permute(0, 2, 1), dense_feature)
            refined.append(F_t_a)
            anomaly_map_new = post.prompt_temp_l1.exp() * dense_feature @ F_t_a.permute(0, 2, 1)
            Bn, L, C = anomaly_map_new.shape
            H = int(np.sqrt(L))
            anomaly_map_new = torch.nn.functional.interpolate(anomaly_map_new.permute(0, 2, 1).view(Bn, 2, H, H),
                                                              size=size, mode="bilinear", align_corners=True)
            maps_new.append(torch.softmax(anomaly_map_new, dim=1))
        patch_tokens_linear = linear(patch_tokens)
        maps_raw = []
        for layer in range(len(patch_tokens_linear)):
            dense_feature = patch_tokens_linear[layer].clone()
            dense_feature = dense_feature / dense_feature.norm(dim=-1, keepdim=True)
            anomaly_map_raw = pre.prompt_temp.exp() * dense_feature @ text_embeddings
            Bn, L, C = anomaly_map_raw.shape
            H = int(np.sqrt(L))
            anomaly_map_raw = torch.nn.functional.interpolate(anomaly_map_raw.permute(0, 2, 1).view(Bn, 2, H, H),
                                                              size=size, mode="bilinear", align_corners=True)
            maps_raw.append(torch.softmax(anomaly_map_raw, dim=1))
        return image_features, text_embeddings.permute(0, 2, 1), refined, maps_raw, maps_new

    @staticmethod
    def fuse_and_score(maps_raw, maps_new, k=TOPK):
        """test.py: layer means, alpha fusion (calcuate_metric), top-k score (before its min-max)."""
        anomaly_map_raw = np.mean([m[:, 1].numpy() for m in maps_raw], axis=0)
        anomaly_map_new = np.mean([m[:, 1].numpy() for m in maps_new], axis=0)
        alpha = 1 - ALPHA
        fused = alpha * anomaly_map_raw + (1 - alpha) * anomaly_map_new
        can_k = -k
        pr_sp_1 = np.partition(anomaly_map_raw.reshape(anomaly_map_raw.shape[0], -1), kth=can_k)[:, can_k:]
        pr_sp_2 = np.partition(anomaly_map_new.reshape(anomaly_map_new.shape[0], -1), kth=can_k)[:, can_k:]
        score = np.mean(pr_sp_1, axis=1) + np.mean(pr_sp_2, axis=1)
        return anomaly_map_raw, anomaly_map_new, fused, score

    def train_step(self, checkpoint: dict, size: int, activation: str, image, gt):
        """train.py: modules in train mode, its optimizer groups, one step on (image, mask)."""
        checkpoint = copy.deepcopy(checkpoint)  # _load_stages shares the storage: the step would change it
        model, _ = self.clip(size, activation)
        model_optim = self.train_module._freeze_stages(model, "prompt")
        trainable_layer, New_Lan_Embed, Zero_try, prompt_pre = self.modules()
        trainable_layer.train(), New_Lan_Embed.train(), Zero_try.train()
        parameter_prompt_list = [m for n, m in New_Lan_Embed.named_parameters() if n != "prompt_temp"]
        group1 = [m for n, m in Zero_try.named_parameters() if n not in ["prompt_temp_l1"]]
        group2 = [m for n, m in Zero_try.named_parameters() if n in ["prompt_temp_l1"]]
        parameter_model_prompt_list = [value for key, value in model_optim.items()]
        lr_group1 = list(trainable_layer.parameters()) + parameter_prompt_list + parameter_model_prompt_list
        lr_group2 = [New_Lan_Embed.prompt_temp]
        optimizer = torch.optim.Adam([{"params": group1 + lr_group1, "lr": LR}, {"params": group2 + lr_group2, "lr": LR_TAU}],
                                     lr=LR, betas=(0.5, 0.999))
        # resume, as train.py does
        trainable_layer.load_state_dict(checkpoint["trainable_linearlayer"])
        Zero_try.load_state_dict(checkpoint["Zero_try"])
        New_Lan_Embed.load_state_dict(checkpoint["New_Lan_Embed"])
        self.train_module._load_stages(model, checkpoint, "prompt")
        loss_focal, loss_dice = self.FocalLoss(), self.BinaryDiceLoss()

        _, _, _, anomaly_maps_raw, anomaly_maps_new = self.forward(model, trainable_layer, New_Lan_Embed, Zero_try, prompt_pre, image, size)
        loss_new = 0
        for num in range(len(anomaly_maps_new)):
            loss_new += loss_focal(anomaly_maps_new[num], gt)
            loss_new += loss_dice(anomaly_maps_new[num][:, 1, :, :], gt)
        loss_base = 0
        for num in range(len(anomaly_maps_raw)):
            loss_base += loss_focal(anomaly_maps_raw[num], gt)
            loss_base += loss_dice(anomaly_maps_raw[num][:, 1, :, :], gt)
        loss = loss_new + loss_base
        optimizer.zero_grad()
        loss.backward()

        def grad(p):  # float16 is enough for the scale-relative comparison, and half the size
            return (p.grad if p.grad is not None else torch.zeros_like(p)).detach().half()

        grads = {name: {n: grad(p) for n, p in module.named_parameters()}
                 for name, module in (("trainable_linearlayer", trainable_layer), ("New_Lan_Embed", New_Lan_Embed), ("Zero_try", Zero_try))}
        grads.update({n: grad(p) for n, p in model_optim.items()})
        optimizer.step()
        save_dict = {"trainable_linearlayer": trainable_layer.state_dict(), "New_Lan_Embed": New_Lan_Embed.state_dict(),
                     "Zero_try": Zero_try.state_dict()}
        save_dict.update(model_optim)
        return float(loss), save_dict, grads


def make_checkpoint(public: Public, gen: torch.Generator, deep: bool = True) -> dict:
    """Random VCP-CLIP parameters with non-trivial values, as train.py's save_dict."""
    model, _ = public.clip(NATIVE, "gelu", deep)
    model_optim = public.train_module._freeze_stages(model, "prompt")
    trainable_layer, New_Lan_Embed, Zero_try, _ = public.modules()
    with torch.no_grad():
        for module in (trainable_layer, New_Lan_Embed, Zero_try):
            for name, p in module.named_parameters():
                p.add_(torch.randn(p.shape, generator=gen) * 0.05)
        # Sharper Post-VCP attention and larger temperatures than at initialisation, so that the
        # normal and abnormal refined embeddings (and the VCP maps) differ well above the tolerance.
        Zero_try.q_proj_pre.weight.mul_(QK_GAIN)
        Zero_try.k_proj_pre_1.weight.mul_(QK_GAIN)
        New_Lan_Embed.prompt_temp.fill_(3.6)
        Zero_try.prompt_temp_l1.fill_(4.2)
        for name, p in model_optim.items():
            if name == "prompt_norm.weight":
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name == "prompt_norm.bias":
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    save_dict = {"trainable_linearlayer": trainable_layer.state_dict(), "New_Lan_Embed": New_Lan_Embed.state_dict(),
                 "Zero_try": Zero_try.state_dict()}
    save_dict.update(model_optim)
    return save_dict


def check_conversion(public: Public, hf_weights: dict, config: CLIPConfig, tokenize: TinyTokenize, gen) -> dict:
    """The public CLIP on the converted weights equals transformers' CLIPModel at the native size (no prompts)."""
    config = copy.deepcopy(config)
    config._attn_implementation = "eager"
    hf = CLIPModel(config)
    hf.load_state_dict(hf_weights, strict=False)
    hf.eval()
    model, _ = public.clip(NATIVE, "gelu", deep=False)
    model.eval()
    image = torch.randn(B, 3, NATIVE, NATIVE, generator=gen)
    with torch.no_grad():
        ours = model.encode_image(image, LAYERS)[0]
        theirs = hf.get_image_features(pixel_values=image)
        theirs = getattr(theirs, "pooler_output", theirs)
        image_err = (ours - theirs).abs().max().item()
        words = tokenize.tokenizer.encode("a photo of a good object", add_special_tokens=False).ids
        ids = torch.zeros(1, CONTEXT, dtype=torch.long)
        ids[0, : len(words) + 2] = torch.tensor([49406, *words, 49407])
        hf_ids = torch.zeros(1, CONTEXT, dtype=torch.long)
        hf_ids[0, : len(words) + 2] = torch.tensor([tokenize.bos, *words, tokenize.eos])
        x = model.token_embedding(ids) + model.positional_embedding
        x, _, _ = model.transformer(x.permute(1, 0, 2))
        text_ours = model.ln_final(x.permute(1, 0, 2))[0, len(words) + 1] @ model.text_projection
        text_theirs = hf.get_text_features(input_ids=hf_ids)
        text_theirs = getattr(text_theirs, "pooler_output", text_theirs)[0]
        text_err = (text_ours - text_theirs).abs().max().item()
    assert image_err < 1e-5 and text_err < 1e-5, f"conversion check: image {image_err}, text {text_err}"
    return {"image_features_max_abs_diff": image_err, "text_features_max_abs_diff": text_err}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("public_code", type=Path, help="local copy of github.com/xiaozhen228/VCP-CLIP")
    ap.add_argument("--commit", help="commit of that copy (default: git rev-parse HEAD in it)")
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "vcp-clip-public")
    a = ap.parse_args()
    code = a.public_code.resolve()
    if not (code / "models" / "model_CLIP.py").exists():
        sys.exit(f"{code}: not the VCP-CLIP repository (no models/model_CLIP.py)")
    commit = a.commit
    if commit is None:
        try:
            commit = subprocess.run(["git", "-C", str(code), "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            sys.exit(f"{code} is not a git checkout: pass --commit <sha of the public code>")

    warnings.filterwarnings("ignore")
    install_stubs()
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    out = a.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    (out / "tiny-clip").mkdir(parents=True)
    (out / "predict").mkdir()

    tokenizer = Tokenizer.from_file(str(TINY_TOKENIZER))
    vocab = tokenizer.get_vocab_size()
    bos, eos = tokenizer.token_to_id("<|startoftext|>"), tokenizer.token_to_id("<|endoftext|>")
    config = tiny_config(vocab, bos, eos)
    hf_weights = tiny_weights(config, gen)
    config.save_pretrained(out / "tiny-clip")
    save_file({k: v.half().contiguous() for k, v in hf_weights.items()}, str(out / "tiny-clip" / "model.safetensors"),
              metadata={"format": "pt"})
    shutil.copy(TINY_TOKENIZER, out / "tiny-clip" / "tokenizer.json")

    rows = {i: i for i in range(vocab) if i not in (bos, eos)}
    rows.update({bos: 49406, eos: 49407})
    tokenize = TinyTokenize(tokenizer, bos, eos)
    with tempfile.TemporaryDirectory() as tmp:
        jit_path = Path(tmp) / "tiny-openai.pt"
        write_torchscript(openai_state_dict(hf_weights, rows), jit_path)
        public = Public(code, jit_path, tokenize)
        conversion = check_conversion(public, hf_weights, config, tokenize, gen)

        checkpoint = make_checkpoint(public, gen)
        torch.save(checkpoint, out / "public.pth")
        shallow = make_checkpoint(public, gen, deep=False)
        torch.save(shallow, out / "public-shallow.pth")
        checkpoint = torch.load(out / "public.pth", map_location="cpu", weights_only=True)
        shallow = torch.load(out / "public-shallow.pth", map_location="cpu", weights_only=True)

        golden, losses, cases = {}, {}, []
        mean = torch.tensor((0.48145466, 0.4578275, 0.40821073)).view(1, 3, 1, 1)
        std = torch.tensor((0.26862954, 0.26130258, 0.27577711)).view(1, 3, 1, 1)
        for size in SIZES:
            pixels = ((torch.rand(B, 3, size, size, generator=gen) - mean) / std).float()
            mask = torch.zeros(B, size, size)
            mask[0, size // 4: size // 2, size // 3: 2 * size // 3] = 1
            mask[1, size // 2:, : size // 3] = 1
            golden[f"input.pixels.{size}"], golden[f"input.mask.{size}"] = pixels, mask

        def forward_case(tag, ckpt, size, act, deep=True, use_global=True, heads=POST_HEADS, templates=None):
            model, linear, pre, post, prompts, _ = public.load(ckpt, size, act, deep, heads, templates)
            for m in (model, linear, pre, post):
                m.eval()
            with torch.no_grad():
                g, text, refined, maps_raw, maps_new = Public.forward(model, linear, pre, post, prompts,
                                                                      golden[f"input.pixels.{size}"], size, use_global)
            mean_raw, mean_new, fused, score = Public.fuse_and_score(maps_raw, maps_new)
            golden[f"{tag}.global"], golden[f"{tag}.text"] = g, text
            for i, layer in enumerate(LAYERS):
                golden[f"{tag}.refined.{layer}"] = refined[i]
                golden[f"{tag}.map.base.{layer}"] = maps_raw[i][:, 1]
                golden[f"{tag}.map.vcp.{layer}"] = maps_new[i][:, 1]
            golden[f"{tag}.mean.base"], golden[f"{tag}.mean.vcp"] = torch.from_numpy(mean_raw), torch.from_numpy(mean_new)
            golden[f"{tag}.fused"], golden[f"{tag}.score"] = torch.from_numpy(fused), torch.from_numpy(score)
            gt = golden[f"input.mask.{size}"]
            loss_focal, loss_dice = public.FocalLoss(), public.BinaryDiceLoss()
            total = 0.0
            for maps in (maps_new, maps_raw):
                for m in maps:
                    total += float(loss_focal(m, gt)) + float(loss_dice(m[:, 1, :, :], gt))
            losses[tag] = total

        for act in ACTIVATIONS:
            for size in SIZES:
                tag = f"{act}.{size}"
                forward_case(tag, checkpoint, size, act)
                cases.append({"tag": tag, "activation": act, "image_size": size, "config": {}})
        for act, size in SHALLOW_CASES:
            tag = f"shallow.{act}.{size}"
            forward_case(tag, shallow, size, act, deep=False)
            cases.append({"tag": tag, "activation": act, "image_size": size, "config": {"dtp": False}, "checkpoint": "public-shallow.pth"})
        for act, size in NO_GLOBAL_CASES:
            tag = f"no-global.{act}.{size}"
            forward_case(tag, checkpoint, size, act, use_global=False)
            cases.append({"tag": tag, "activation": act, "image_size": size, "config": {"pre_vcp": False}})

        for act, size in ENSEMBLE_CASES:
            tag = f"ensemble.{act}.{size}"
            forward_case(tag, checkpoint, size, act, templates=ENSEMBLE_TEMPLATES)
            cases.append({"tag": tag, "activation": act, "image_size": size,
                          "config": {"templates": ENSEMBLE_CONFIG_TEMPLATES, "state_words": [["good", "damaged"]]}})
        for act, size in HEADS4_CASES:
            tag = f"heads4.{act}.{size}"
            forward_case(tag, checkpoint, size, act, heads=4)
            cases.append({"tag": tag, "activation": act, "image_size": size, "config": {"heads": 4}})

        adam = []
        for act, size in ADAM_CASES:
            loss, after, grads = public.train_step(checkpoint, size, act, golden[f"input.pixels.{size}"], golden[f"input.mask.{size}"])
            name = f"adam.{act}.{size}.pth"
            torch.save(after, out / name)
            entry = {"activation": act, "image_size": size, "loss": loss, "file": name}
            if (act, size) == ADAM_CASES[0]:
                entry["gradients"] = f"grads.{act}.{size}.pth"
                torch.save(grads, out / entry["gradients"])
            adam.append(entry)

        # predict: one image that needs resizing (image and positional grid), as test.py preprocesses it
        width, height = PREDICT_IMAGE
        yy, xx = np.mgrid[0:height, 0:width]
        rgb = np.stack([128 + 100 * np.sin(xx / 5.0 + c) * np.cos(yy / 7.0 - c) for c in range(3)], -1)
        rgb = np.clip(rgb + np.random.default_rng(SEED).normal(0, 12, rgb.shape), 0, 255).astype(np.uint8)
        Image.fromarray(rgb).save(out / "predict" / "image.png")
        model, linear, pre, post, prompts, preprocess = public.load(checkpoint, PREDICT_SIZE, "gelu")
        for m in (model, linear, pre, post):
            m.eval()
        image = preprocess(Image.open(out / "predict" / "image.png")).unsqueeze(0)
        with torch.no_grad():
            _, text, refined, maps_raw, maps_new = Public.forward(model, linear, pre, post, prompts, image, PREDICT_SIZE)
        # test.py's k = 2000 capped at the pixel count (np.partition needs kth < size), as vcp-exp caps topk
        mean_raw, mean_new, fused, score = Public.fuse_and_score(maps_raw, maps_new, k=min(2000, PREDICT_SIZE ** 2))
        dump = {"text": text[0], "map.base": torch.from_numpy(mean_raw[0]), "map.vcp": torch.from_numpy(mean_new[0]),
                "fused_map": torch.from_numpy(fused[0]), "score": torch.from_numpy(score),
                # test.py: gaussian_filter(..., sigma, axes=(1, 2)) per image, before its min-max over the product
                "final_map": torch.from_numpy(gaussian_filter(fused, sigma=SIGMA, axes=(1, 2))[0])}
        for i, layer in enumerate(LAYERS):
            dump[f"refined.{layer}"] = refined[i][0]
            dump[f"layer_map.base.{i}"] = maps_raw[i][0, 1]
            dump[f"layer_map.vcp.{i}"] = maps_new[i][0, 1]
        save_file({k: v.float().contiguous() for k, v in dump.items()}, str(out / "predict" / "expected.safetensors"))

    # the importer's error cases
    torch.save({"trainable_linearlayer": {}}, out / "legacy.pth", _use_new_zipfile_serialization=False)
    torch.save({"New_Lan_Embed": checkpoint["New_Lan_Embed"]}, out / "missing-keys.pth")
    with zipfile.ZipFile(out / "not-torch.zip", "w") as z:
        z.writestr(zipfile.ZipInfo("readme.txt", date_time=(2024, 1, 1, 0, 0, 0)), "a zip archive, not a torch checkpoint\n")

    save_file({k: v.float().contiguous() for k, v in golden.items()}, str(out / "golden.safetensors"))
    meta = {
        "public_code": "github.com/xiaozhen228/VCP-CLIP", "commit": commit, "torch": torch.__version__,
        "script": "python/golden/make_vcp_public_golden.py", "config": CONFIG, "batch": B, "sizes": SIZES,
        "cases": cases, "losses": losses, "adam": adam, "conversion_check": conversion,
        "predict": {"image": "predict/image.png", "image_size": PREDICT_SIZE, "alpha": ALPHA, "sigma": SIGMA,
                    "checkpoint": "public.pth", "expected": "predict/expected.safetensors"},
    }
    (out / "golden.json").write_text(json.dumps(meta, indent=2) + "\n")
    readme = f"""# VCP-CLIP goldens from the authors' implementation

Written by `python/golden/make_vcp_public_golden.py` from the public VCP-CLIP code
(github.com/xiaozhen228/VCP-CLIP, commit `{commit}`), torch {torch.__version__}. Regenerate with
`<venv>/bin/python python/golden/make_vcp_public_golden.py <local copy of that repository>`;
its docstring lists what runs, what is stubbed and why, and the cases the public code cannot run.

- `tiny-clip/`: the tiny CLIP in Hugging Face format (float16, every value float16-exact).
- `public.pth`, `public-shallow.pth`: VCP-CLIP parameters saved as the public train.py saves them
  (with and without deep prompts); `adam.<activation>.<size>.pth`: after one Adam step.
- `golden.safetensors` + `golden.json`: inputs and the public forward's outputs per case.
- `predict/`: an image that needs resizing and what the public forward gives for it.
- `legacy.pth` (torch's pre-1.6 format), `missing-keys.pth`, `not-torch.zip`: inputs for the
  importer's errors.
"""
    (out / "README.md").write_text(readme)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"conversion check {conversion}; losses {losses}; fixtures {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
