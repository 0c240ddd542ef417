"""Tiny CLIP checkpoint in Hugging Face format + golden outputs for src/model/clip.

Writes assets/clip/tiny-clip/ (config.json, model.safetensors and the tokenizer files of a real
CLIP-style BPE tokenizer with a tiny vocabulary; also the quickstart's CLIP, shipped with the
package) and tests/fixtures/clip/golden.{json,safetensors}.

What is compared (all references computed in float64 from the float32 weights that are saved):
- vision.<act>.hidden.<i>     outputs of vision blocks i = 1..N (1-based), [B, 1+L, W], for the two
                              native-size images (hooks on transformers' CLIPEncoderLayer modules).
- vision.<act>.image_embeds   CLIPModel.get_image_features: visual_projection(post_layernorm(cls)),
                              not normalised.
- vision_large.<act>.*        the same for one 56×56 image (grid 7×7 vs the checkpoint's 4×4):
                              computed by hand — position embeddings resized here with
                              F.interpolate(bicubic, align_corners=False) on the grid, class token kept
                              (the spec's rule) — then pre_layrnorm and the HF layers. It is also checked
                              to equal transformers' interpolate_pos_encoding=True.
- text.<act>.text_embeds      CLIPModel.get_text_features for the ids in golden.json (zero padding to
                              77, EOS = first position of the highest id), not normalised.
- text_deep.<act>.text_embeds embeddings fed directly, with deep prompts as VCP-CLIP uses them: before
                              block 1 the vector P[0] is inserted right after SOS and the last position
                              dropped; before block i>1, position 1 is overwritten with P[i-1]; after the
                              last block position 1 is removed, then final_layer_norm, EOS pooling at
                              the original EOS index, text_projection. The input embeddings are the
                              token embeddings of the ids with position 5 replaced by `splice`.
- resize.<case>.{input,bicubic,bilinear}  F.interpolate of a [1, C, h, w] grid to the target size,
                              align_corners=False (cases listed in golden.json).
Run: .venv-golden/bin/python python/golden/make_clip_fixture.py
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, trainers, normalizers, Regex
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "clip"
CKPT = ROOT / "assets" / "clip" / "tiny-clip"
# The real CLIP tokenizer files: $VCP_EXP_CLIP_TOKENIZER, else shared/assets/ beside the checkout.
REAL_TOKENIZER = Path(os.environ.get("VCP_EXP_CLIP_TOKENIZER") or ROOT.parent / "shared/assets/clip-tokenizer") / "tokenizer.json"
SEED = 1234
N_MERGES = 300
CONTEXT = 77

CORPUS = """
a photo of a good object. a photo of a damaged object. a photo of a flawless object.
a photo of a broken object with a defect. a photo of the perfect bottle without defect.
a cropped photo of a good cable. a close-up photo of a damaged screw with a crack.
a bright photo of an intact carpet. a dark photo of a scratched metal nut with a hole.
a photo of a normal leather. a photo of an anomalous tile with contamination and a stain.
a blurry photo of a faulty pill, a photo of a good capsule, a photo of a broken hazelnut.
a good wood surface, a damaged grid, a flawless zipper, a defective toothbrush, a transistor.
there is a defect on the object. the object is good. the object is damaged and broken.
a printed circuit board with a missing component, a bent lead, a cut inner insulation, a poke.
macaroni, candles, cashews, chewing gum, fryum, pipe fryum, a pcb with a melted spot or a squeeze.
"""


def bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP byte-to-unicode table, in CLIP's vocabulary order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def build_tokenizer() -> tuple[dict, list[str]]:
    """CLIP's tokenizer.json pipeline with merges trained on CORPUS; vocab laid out as CLIP's."""
    real = json.loads(REAL_TOKENIZER.read_text())
    trainer_tok = Tokenizer(models.BPE(end_of_word_suffix="</w>", continuing_subword_prefix=""))
    trainer_tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    trainer_tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(real["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]), behavior="removed", invert=True
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=100_000,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        end_of_word_suffix="</w>",
    )
    trainer_tok.train_from_iterator([CORPUS] * 4, trainer=trainer)
    trained = json.loads(trainer_tok.to_str())["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in trained][:N_MERGES]

    units = bytes_to_unicode()
    vocab_list = units + [u + "</w>" for u in units]
    for merge in merges:
        token = merge.replace(" ", "")
        assert token not in vocab_list, f"merge {merge} duplicates a vocabulary entry"
        vocab_list.append(token)
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(vocab_list)}
    sot, eot = vocab["<|startoftext|>"], vocab["<|endoftext|>"]

    tok = json.loads(json.dumps(real))
    tok["model"]["vocab"] = vocab
    tok["model"]["merges"] = [m.split(" ") for m in merges] if isinstance(real["model"]["merges"][0], list) else merges
    tok["added_tokens"][0]["id"] = sot
    tok["added_tokens"][1]["id"] = eot
    tok["post_processor"]["cls"] = ["<|startoftext|>", sot]
    tok["post_processor"]["sep"] = ["<|endoftext|>", eot]
    return tok, merges


def write_tokenizer(tok: dict, merges: list[str]) -> Tokenizer:
    CKPT.mkdir(parents=True, exist_ok=True)
    (CKPT / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False, indent=2) + "\n")
    (CKPT / "vocab.json").write_text(json.dumps(tok["model"]["vocab"], ensure_ascii=False) + "\n")
    (CKPT / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    config = json.loads((REAL_TOKENIZER.parent / "tokenizer_config.json").read_text())
    config["added_tokens_decoder"] = {
        str(tok["added_tokens"][0]["id"]): config["added_tokens_decoder"]["49406"],
        str(tok["added_tokens"][1]["id"]): config["added_tokens_decoder"]["49407"],
    }
    (CKPT / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    shutil.copyfile(REAL_TOKENIZER.parent / "special_tokens_map.json", CKPT / "special_tokens_map.json")
    return Tokenizer.from_file(str(CKPT / "tokenizer.json"))


def tiny_config(vocab_size: int, eos: int, bos: int, act: str) -> CLIPConfig:
    return CLIPConfig(
        text_config=dict(
            vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
            num_attention_heads=4, max_position_embeddings=CONTEXT, hidden_act=act, layer_norm_eps=1e-5,
            eos_token_id=eos, bos_token_id=bos, pad_token_id=eos, projection_dim=24,
        ),
        vision_config=dict(
            image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
            num_attention_heads=4, hidden_act=act, layer_norm_eps=1e-5, projection_dim=24,
        ),
        projection_dim=24,
    )


def make_weights(config: CLIPConfig) -> dict[str, torch.Tensor]:
    torch.manual_seed(SEED)
    model = CLIPModel(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            # Perturb everything (LayerNorm gains and biases too) so no parameter is trivially 0 or 1.
            scale = 0.3 if "norm" in name else 0.05
            p.add_(torch.randn_like(p) * scale)
    return {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}


def load_model(config: CLIPConfig, weights: dict[str, torch.Tensor]) -> CLIPModel:
    config._attn_implementation = "eager"
    model = CLIPModel(config)
    model.load_state_dict(weights, strict=True)
    return model.double().eval()


def causal_mask(t: int) -> torch.Tensor:
    mask = torch.full((t, t), torch.finfo(torch.float64).min, dtype=torch.float64).triu(1)
    return mask[None, None]


def vision_reference(model: CLIPModel, pixels: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Vision tower by hand, position embeddings resized to the input's grid (class token kept)."""
    vm = model.vision_model
    emb = vm.embeddings
    patch = emb.patch_embedding(pixels).flatten(2).transpose(1, 2)  # [B, L, W]
    cls = emb.class_embedding.expand(pixels.shape[0], 1, -1)
    pos = emb.position_embedding.weight  # [1 + g0², W]
    g0 = int(round((pos.shape[0] - 1) ** 0.5))
    g = pixels.shape[-1] // emb.patch_size
    grid = pos[1:].reshape(1, g0, g0, -1).permute(0, 3, 1, 2)
    if g != g0:
        grid = F.interpolate(grid, size=(g, g), mode="bicubic", align_corners=False)
    pos = torch.cat([pos[:1], grid.permute(0, 2, 3, 1).reshape(g * g, -1)], dim=0)
    x = vm.pre_layrnorm(torch.cat([cls, patch], dim=1) + pos)
    hidden = []
    for layer in vm.encoder.layers:
        x = layer(x, None)
        hidden.append(x)
    image_embeds = model.visual_projection(vm.post_layernorm(x[:, 0]))
    return hidden, image_embeds


def text_deep_reference(model: CLIPModel, embeds: torch.Tensor, eos: list[int], prompts: torch.Tensor) -> torch.Tensor:
    tm = model.text_model
    t = embeds.shape[1]
    x = embeds + tm.embeddings.position_embedding.weight[:t]
    for i, layer in enumerate(tm.encoder.layers):
        if i == 0:
            p = prompts[0].expand(x.shape[0], 1, -1)
            x = torch.cat([x[:, :1], p, x[:, 1:-1]], dim=1)
        else:
            x = x.clone()
            x[:, 1] = prompts[i]
        x = layer(x, causal_mask(x.shape[1]))
    x = torch.cat([x[:, :1], x[:, 2:]], dim=1)
    x = tm.final_layer_norm(x)
    pooled = x[torch.arange(x.shape[0]), torch.tensor(eos)]
    return model.text_projection(pooled)


def resize_cases(gen: torch.Generator) -> tuple[dict[str, torch.Tensor], list[dict]]:
    cases = [
        ("b16_224_to_320", 3, 14, 20),  # ViT-B-16: 224 → 320
        ("l14_336_to_518", 2, 24, 37),  # ViT-L-14-336: 336 → 518
        ("down_7_to_5", 3, 7, 5),
    ]
    out, meta = {}, []
    for name, c, g_in, g_out in cases:
        grid = torch.randn(1, c, g_in, g_in, generator=gen, dtype=torch.float64)
        out[f"resize.{name}.input"] = grid[0].permute(1, 2, 0).reshape(g_in * g_in, c)  # tokens [h·w, C]
        for mode in ("bicubic", "bilinear"):
            r = F.interpolate(grid, size=(g_out, g_out), mode=mode, align_corners=False)
            out[f"resize.{name}.{mode}"] = r[0].permute(1, 2, 0).reshape(g_out * g_out, c)
        meta.append({"name": name, "channels": c, "from": g_in, "to": g_out})
    return out, meta


def main() -> None:
    tok_json, merges = build_tokenizer()
    tokenizer = write_tokenizer(tok_json, merges)
    vocab_size = len(tok_json["model"]["vocab"])
    sot, eot = tok_json["added_tokens"][0]["id"], tok_json["added_tokens"][1]["id"]

    prompts = ["a photo of a good object", "a photo of a damaged object with defect", "a flawless broken photo"]
    ids = [tokenizer.encode(p).ids for p in prompts]
    hf_ids = CLIPTokenizer.from_pretrained(str(CKPT))(prompts)["input_ids"]
    assert ids == hf_ids, f"tokenizers and transformers disagree: {ids} vs {hf_ids}"
    padded = torch.zeros(len(ids), CONTEXT, dtype=torch.long)
    for i, row in enumerate(ids):
        padded[i, : len(row)] = torch.tensor(row)
    eos = [len(row) - 1 for row in ids]

    configs = {act: tiny_config(vocab_size, eot, sot, act) for act in ("quick_gelu", "gelu")}
    weights = make_weights(configs["quick_gelu"])
    configs["quick_gelu"].save_pretrained(str(CKPT))  # config.json: OpenAI CLIP's own activation
    save_file(weights, str(CKPT / "model.safetensors"), metadata={"format": "pt"})

    gen = torch.Generator().manual_seed(SEED)
    images = torch.randn(2, 3, 32, 32, generator=gen, dtype=torch.float64)
    large = torch.randn(1, 3, 56, 56, generator=gen, dtype=torch.float64)
    splice = torch.randn(2, 32, generator=gen, dtype=torch.float64)
    deep = torch.rand(3, 32, generator=gen, dtype=torch.float64) * 2 - 1

    golden: dict[str, torch.Tensor] = {
        "input.images": images, "input.large": large, "input.splice": splice, "input.deep": deep,
    }
    with torch.no_grad():
        for act, config in configs.items():
            model = load_model(config, weights)
            hidden, image_embeds = vision_reference(model, images)
            reference = model.get_image_features(pixel_values=images).pooler_output
            assert torch.allclose(image_embeds, reference, atol=1e-12)
            for i, h in enumerate(hidden):
                golden[f"vision.{act}.hidden.{i + 1}"] = h
            golden[f"vision.{act}.image_embeds"] = image_embeds

            hidden, image_embeds = vision_reference(model, large)
            reference = model.get_image_features(pixel_values=large, interpolate_pos_encoding=True).pooler_output
            assert torch.allclose(image_embeds, reference, atol=1e-12), "HF interpolate_pos_encoding differs"
            for i, h in enumerate(hidden):
                golden[f"vision_large.{act}.hidden.{i + 1}"] = h
            golden[f"vision_large.{act}.image_embeds"] = image_embeds

            golden[f"text.{act}.text_embeds"] = model.get_text_features(input_ids=padded).pooler_output

            embeds = model.text_model.embeddings.token_embedding(padded[:2]).clone()
            embeds[:, 5] = splice
            golden[f"text_deep.{act}.text_embeds"] = text_deep_reference(model, embeds, eos[:2], deep)

    resize, resize_meta = resize_cases(gen)
    golden.update(resize)
    save_file({k: v.float().contiguous() for k, v in golden.items()}, str(OUT / "golden.safetensors"))
    meta = {
        "description": __doc__.split("Run:")[0].strip(),
        "activations": list(configs),
        "prompts": prompts,
        "ids": ids,
        "context": CONTEXT,
        "eos_index": eos,
        "sot": sot,
        "eot": eot,
        "splice_position": 5,
        "vision_layers": 3,
        "large_image_size": 56,
        "resize_cases": resize_meta,
    }
    (OUT / "golden.json").write_text(json.dumps(meta, indent=2) + "\n")
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"vocab {vocab_size} ({len(merges)} merges), ids {ids}, fixtures {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
