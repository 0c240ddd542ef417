#!/usr/bin/env python3
"""The tiny CLIP of assets/clip/tiny-clip in the other formats CLIP weights are published
in, written by the libraries that publish them, for `vcp-exp weights pull` (tests/model/clip/
formats.test.ts). Every format holds the same float32 values, bit for bit.

tests/fixtures/clip/formats/
- pytorch_model.bin   torch.save of transformers' CLIPModel.state_dict() (what save_pretrained
                      wrote before safetensors), plus the int64 position_ids buffers that
                      transformers < 4.31 kept in it (OpenAI's Hub repositories have them).
                      Checked: torch.load(weights_only=True) gives model.safetensors' tensors
                      bit for bit.
- open_clip/          an OpenCLIP / timm `*.openai`-style repository written by open_clip's own
                      save_for_hf: open_clip_config.json, open_clip_model.safetensors (OpenAI
                      parameter names), tokenizer files. The weights are the tiny CLIP's, moved
                      to OpenAI names by hf_to_open_clip() below; that mapping is checked
                      independently: open_clip's CLIP forward (encode_image / encode_text) on
                      them equals transformers' CLIPModel (get_image_features /
                      get_text_features) in float64 to 1e-6 (transformers' eager attention
                      takes its softmax in float32, ~1e-7; a wrong name or transpose is O(1)).

Stubs (visible): open_clip imports torchvision for its image transforms, which this venv lacks;
torchvision is replaced by an inert module before `import open_clip` (no transform is used).
save_for_hf saves a tokenizer object; instead of open_clip's HFTokenizer (which would download
openai/clip-vit-large-patch14) a stand-in copies the tiny CLIP's tokenizer files.
Run: <python with torch, transformers, safetensors, open_clip> python/golden/make_weight_formats.py
"""

import importlib.machinery
import json
import shutil
import sys
import types
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import CLIPConfig, CLIPModel  # before the torchvision stub: it probes for it

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "assets" / "clip" / "tiny-clip"
GOLDEN = ROOT / "tests" / "fixtures" / "clip" / "golden.json"
OUT = ROOT / "tests" / "fixtures" / "clip" / "formats"
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"]


def stub_torchvision():
    class _Meta(type):
        def __getattr__(cls, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return cls

    class _Inert(metaclass=_Meta):
        def __init__(self, *a, **k):
            pass

    class _Module(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return _Inert

    names = ["torchvision", "torchvision.transforms", "torchvision.transforms.functional",
             "torchvision.transforms.v2", "torchvision.ops", "torchvision.ops.misc"]
    for name in names:
        module = _Module(name)
        module.__path__ = []
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules[name] = module
    for name in names:
        if "." in name:
            parent, child = name.rsplit(".", 1)
            setattr(sys.modules[parent], child, sys.modules[name])


def hf_to_open_clip(hf, vision_layers, text_layers):
    """transformers CLIPModel names → OpenAI/OpenCLIP names (q/k/v fused, projections transposed)."""
    out = {}

    def block(src, dst):
        out[f"{dst}.attn.in_proj_weight"] = torch.cat([hf[f"{src}.self_attn.{p}_proj.weight"] for p in "qkv"])
        out[f"{dst}.attn.in_proj_bias"] = torch.cat([hf[f"{src}.self_attn.{p}_proj.bias"] for p in "qkv"])
        for part in ("weight", "bias"):
            out[f"{dst}.attn.out_proj.{part}"] = hf[f"{src}.self_attn.out_proj.{part}"]
            out[f"{dst}.ln_1.{part}"] = hf[f"{src}.layer_norm1.{part}"]
            out[f"{dst}.ln_2.{part}"] = hf[f"{src}.layer_norm2.{part}"]
            out[f"{dst}.mlp.c_fc.{part}"] = hf[f"{src}.mlp.fc1.{part}"]
            out[f"{dst}.mlp.c_proj.{part}"] = hf[f"{src}.mlp.fc2.{part}"]

    out["visual.class_embedding"] = hf["vision_model.embeddings.class_embedding"]
    out["visual.positional_embedding"] = hf["vision_model.embeddings.position_embedding.weight"]
    out["visual.conv1.weight"] = hf["vision_model.embeddings.patch_embedding.weight"]
    for part in ("weight", "bias"):
        out[f"visual.ln_pre.{part}"] = hf[f"vision_model.pre_layrnorm.{part}"]
        out[f"visual.ln_post.{part}"] = hf[f"vision_model.post_layernorm.{part}"]
        out[f"ln_final.{part}"] = hf[f"text_model.final_layer_norm.{part}"]
    for i in range(vision_layers):
        block(f"vision_model.encoder.layers.{i}", f"visual.transformer.resblocks.{i}")
    for i in range(text_layers):
        block(f"text_model.encoder.layers.{i}", f"transformer.resblocks.{i}")
    out["visual.proj"] = hf["visual_projection.weight"].t().contiguous()
    out["token_embedding.weight"] = hf["text_model.embeddings.token_embedding.weight"]
    out["positional_embedding"] = hf["text_model.embeddings.position_embedding.weight"]
    out["text_projection"] = hf["text_projection.weight"].t().contiguous()
    out["logit_scale"] = hf["logit_scale"]
    return out


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.reshape(-1).view(torch.uint8).equal(b.reshape(-1).view(torch.uint8))


class TokenizerFiles:
    """Stand-in for open_clip's HFTokenizer in save_for_hf: writes the tiny CLIP's tokenizer files."""

    def save_pretrained(self, directory):
        for name in TOKENIZER_FILES:
            shutil.copyfile(TINY / name, Path(directory) / name)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    config = CLIPConfig.from_pretrained(TINY)
    weights = load_file(str(TINY / "model.safetensors"))
    model = CLIPModel(config)
    model.load_state_dict(weights, strict=True)

    # 1. pytorch_model.bin, as torch.save(state_dict) and with the old position_ids buffers.
    state = OrderedDict(model.state_dict())
    v, t = config.vision_config, config.text_config
    state["text_model.embeddings.position_ids"] = torch.arange(t.max_position_embeddings).unsqueeze(0)
    state["vision_model.embeddings.position_ids"] = torch.arange((v.image_size // v.patch_size) ** 2 + 1).unsqueeze(0)
    torch.save(state, OUT / "pytorch_model.bin")
    loaded = torch.load(OUT / "pytorch_model.bin", weights_only=True)
    for name, tensor in weights.items():
        assert same_bits(loaded[name], tensor), name

    # 2. The OpenCLIP layout, written by open_clip.
    stub_torchvision()
    import open_clip  # noqa: F401  (after the stub)
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from open_clip.model import CLIP
    from open_clip.push_to_hf_hub import save_for_hf

    model_cfg = {
        "embed_dim": config.projection_dim,
        "quick_gelu": True,
        "vision_cfg": {
            "image_size": v.image_size, "layers": v.num_hidden_layers, "width": v.hidden_size,
            "patch_size": v.patch_size, "head_width": v.hidden_size // v.num_attention_heads,
            "mlp_ratio": v.intermediate_size / v.hidden_size,
        },
        "text_cfg": {
            "context_length": t.max_position_embeddings, "vocab_size": t.vocab_size, "width": t.hidden_size,
            "heads": t.num_attention_heads, "layers": t.num_hidden_layers,
            "mlp_ratio": t.intermediate_size / t.hidden_size,
        },
    }
    oc = CLIP(**model_cfg)
    oc.load_state_dict(hf_to_open_clip(weights, v.num_hidden_layers, t.num_hidden_layers), strict=True)

    # The mapping checked by the two implementations' forward passes.
    golden = json.loads(GOLDEN.read_text())
    ids = torch.zeros(len(golden["ids"]), t.max_position_embeddings, dtype=torch.long)
    for i, row in enumerate(golden["ids"]):
        ids[i, : len(row)] = torch.tensor(row)
    images = torch.randn(2, 3, v.image_size, v.image_size, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    config._attn_implementation = "eager"
    reference = CLIPModel(config)
    reference.load_state_dict(weights, strict=True)
    reference, oc64 = reference.double().eval(), CLIP(**model_cfg).double().eval()
    oc64.load_state_dict({k: x.double() for k, x in oc.state_dict().items()})
    with torch.no_grad():
        worst = max(
            (oc64.encode_image(images) - reference.get_image_features(pixel_values=images).pooler_output).abs().max().item(),
            (oc64.encode_text(ids) - reference.get_text_features(input_ids=ids).pooler_output).abs().max().item(),
        )
    assert worst < 1e-6, f"open_clip and transformers disagree by {worst}: the name mapping is wrong"

    oc.visual.image_mean, oc.visual.image_std = OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    target = OUT / "open_clip"
    if target.exists():
        shutil.rmtree(target)
    save_for_hf(oc, TokenizerFiles(), model_cfg, str(target), safe_serialization=True)
    saved = load_file(str(target / "open_clip_model.safetensors"))
    for name, tensor in hf_to_open_clip(weights, v.num_hidden_layers, t.num_hidden_layers).items():
        assert same_bits(saved[name], tensor), name
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"open_clip vs transformers features: max |diff| {worst:.1e}; fixtures {total / 1e3:.0f} kB in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
