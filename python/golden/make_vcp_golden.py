"""Golden values for src/model/methods/vcp-clip, written from docs/vcp-clip-spec.md in PyTorch, for
what the authors' code cannot run. Everything it can run is compared against it instead
(python/golden/make_vcp_public_golden.py); a reference written from our own spec is not
independent, so only these remain: deep prompts before EOS (DTP 'post', which the public code
lacks), 1/sqrt(d) scaled Post-VCP attention (its scale is defined but never applied), and the
Post-VCP attention maps (internal to its forward, never returned).

Writes tests/fixtures/vcp-clip/:
- tiny-clip/{config.json, model.safetensors}: a tiny transformers CLIPModel whose text width equals
  its projection dim (Pre-VCP needs W = D), hidden_act "gelu" (the method's default), the
  vocabulary of assets/clip/tiny-clip (whose tokenizer.json is used here and by the tests).
- params.safetensors: every learnable VCP-CLIP tensor, initial values, checkpoint names/layouts
  of the TS module (Linear / Conv1d-k1 weights [out, in]; Mini-Net weight [r, 3]).
- inputs.safetensors: frozen features (patch tokens per layer [B, L, Dv], global [B, D]) and masks.
- golden.safetensors + golden.json: references computed in float64 from the float32 tensors above:
    pre_vcp.category            c = q + Conv1d(g) (an input of the DTP 'post' check)   [B, r, W]
    text.embeddings             UTP + DTP ensemble embeddings (Post-VCP's input)       [B, 2, D]
    text.embeddings_post        the same with the deep prompts before EOS (DTP 'post')  [B, 2, D]
    post_vcp.<l>.attention      attention maps                                     [B, H, 2, L]
    post_vcp.<l>.embeddings_scaled, post_vcp.<l>.attention_scaled   with 1/sqrt(d)  [B, 2, Dv], [B, H, 2, L]
Dropout is 0 here (dtp_dropout: 0 in golden.json's config) so train-mode outputs are deterministic.
Run: .venv-golden/bin/python python/golden/make_vcp_golden.py
"""

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import CLIPConfig, CLIPModel

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "vcp-clip"
TOKENIZER = ROOT / "assets" / "clip" / "tiny-clip" / "tokenizer.json"
SEED = 4321
CONTEXT = 77

# Tiny shapes: text width W = D = 32, 3 text blocks; vision width Dv = 16, 2 blocks, patch 8.
W, TEXT_LAYERS, DV, HEADS, R, N_DEEP = 32, 3, 16, 4, 2, 1
S, PATCH, B = 24, 8, 2
G = S // PATCH
L = G * G
LAYERS = [1, 2]
TEMPLATES = ["a photo of a {state} {cls}", "a close-up photo of the {state} {cls}."]
STATES = [["good", "damaged"], ["flawless", "broken"]]
TOPK = 50
ALPHA = 0.75
LR, LR_TAU = 4e-5, 0.01

CONFIG = {
    "backbone": "tiny", "image_size": S, "layers": LAYERS, "templates": TEMPLATES, "state_words": STATES,
    "n_ctx": R, "deep_prompt_len": N_DEEP, "dtp": True, "dtp_position": "pre", "dtp_dropout": 0,
    "pre_vcp": True, "post_vcp": True, "heads": HEADS, "attention_scaling": False, "alpha": ALPHA,
    "image_score": "topk-mean", "topk": TOPK, "lr": LR, "lr_tau": LR_TAU, "betas": [0.5, 0.999],
}


def tiny_clip(vocab: int, bos: int, eos: int) -> dict[str, torch.Tensor]:
    config = CLIPConfig(
        text_config=dict(
            vocab_size=vocab, hidden_size=W, intermediate_size=64, num_hidden_layers=TEXT_LAYERS,
            num_attention_heads=4, max_position_embeddings=CONTEXT, hidden_act="gelu", layer_norm_eps=1e-5,
            eos_token_id=eos, bos_token_id=bos, pad_token_id=eos, projection_dim=W,
        ),
        vision_config=dict(
            image_size=16, patch_size=PATCH, hidden_size=DV, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=HEADS, hidden_act="gelu", layer_norm_eps=1e-5, projection_dim=W,
        ),
        projection_dim=W,
    )
    model = CLIPModel(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(torch.randn_like(p) * (0.3 if "norm" in name else 0.05))
    (OUT / "tiny-clip").mkdir(parents=True, exist_ok=True)
    config.save_pretrained(OUT / "tiny-clip")
    weights = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, OUT / "tiny-clip" / "model.safetensors", metadata={"format": "pt"})
    return weights


class TextTower:
    """CLIP's text transformer written out (pre-LN, causal, exact GELU), float64."""

    def __init__(self, w: dict[str, torch.Tensor]):
        self.w = {k: v.double() for k, v in w.items() if k.startswith("text_") or k == "text_projection.weight"}

    def ln(self, x, prefix, eps=1e-5):
        return F.layer_norm(x, x.shape[-1:], self.w[prefix + ".weight"], self.w[prefix + ".bias"], eps)

    def lin(self, x, prefix):
        return F.linear(x, self.w[prefix + ".weight"], self.w[prefix + ".bias"])

    def block(self, x, i):
        p = f"text_model.encoder.layers.{i}"
        n, t, _ = x.shape
        h = self.ln(x, p + ".layer_norm1")
        heads = 4
        dh = W // heads
        q = self.lin(h, p + ".self_attn.q_proj").view(n, t, heads, dh).transpose(1, 2)
        k = self.lin(h, p + ".self_attn.k_proj").view(n, t, heads, dh).transpose(1, 2)
        v = self.lin(h, p + ".self_attn.v_proj").view(n, t, heads, dh).transpose(1, 2)
        logits = q @ k.transpose(-1, -2) / math.sqrt(dh)
        logits = logits.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        a = logits.softmax(-1) @ v
        x = x + self.lin(a.transpose(1, 2).reshape(n, t, W), p + ".self_attn.out_proj")
        h = self.ln(x, p + ".layer_norm2")
        return x + self.lin(F.gelu(self.lin(h, p + ".mlp.fc1")), p + ".mlp.fc2")


def check_tower(tower: TextTower, weights: dict, tok: Tokenizer) -> None:
    """The hand-written tower must equal transformers' CLIPModel.get_text_features (no prompts)."""
    config = CLIPConfig.from_pretrained(OUT / "tiny-clip")
    config._attn_implementation = "eager"
    model = CLIPModel(config)
    model.load_state_dict(weights, strict=True)
    model = model.double().eval()
    ids = tok.encode("a photo of a damaged object.").ids
    x = tower.w["text_model.embeddings.token_embedding.weight"][torch.tensor([ids])]
    x = x + tower.w["text_model.embeddings.position_embedding.weight"][: len(ids)]
    for i in range(TEXT_LAYERS):
        x = tower.block(x, i)
    ours = tower.ln(x, "text_model.final_layer_norm")[:, -1] @ tower.w["text_projection.weight"].T
    padded = torch.zeros(1, CONTEXT, dtype=torch.long)
    padded[0, : len(ids)] = torch.tensor(ids)
    with torch.no_grad():
        theirs = model.get_text_features(input_ids=padded)
    theirs = getattr(theirs, "pooler_output", theirs)
    err = (ours - theirs).abs().max().item()
    assert err < 1e-6, f"hand-written text tower differs from transformers by {err}"


def template_ids(tok: Tokenizer, text: str, bos: int, eos: int) -> tuple[list[int], int]:
    """SOS, prefix, R slots (id 0), suffix, EOS; slot position. The text on each side of {cls} is tokenised alone."""
    before, after = text.split("{cls}")
    pre = tok.encode(before, add_special_tokens=False).ids
    post = tok.encode(after, add_special_tokens=False).ids
    return [bos, *pre, *([0] * R), *post, eos], 1 + len(pre)


def prompts_reference(tower: TextTower, tok, bos, eos, category, params, position="pre"):
    """UTP + DTP at the full context length: [B, 2, D] ensemble embeddings and [B·P, D] per-prompt features.

    position "pre": deep prompts right after SOS; "post": right before EOS (EOS moves n places right).
    """
    rows, slots = [], []
    for template in TEMPLATES:
        for pair in STATES:
            for state in pair:
                ids, at = template_ids(tok, template.replace("{state}", state), bos, eos)
                rows.append(ids)
                slots.append(at)
    eos_index = [len(r) - 1 for r in rows]
    ids = torch.zeros(len(rows), CONTEXT, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
    tok_emb = tower.w["text_model.embeddings.token_embedding.weight"]
    pos = tower.w["text_model.embeddings.position_embedding.weight"]
    feats = []
    for b in range(category.shape[0]):
        x = tok_emb[ids].clone()  # [P, 77, W]
        for p, at in enumerate(slots):
            x[p, at : at + R] = category[b]
        x = x + pos
        deep = F.linear(params["dtp.prompts"], params["dtp.prompt_proj.weight"], params["dtp.prompt_proj.bias"])  # [layers, n, W]
        at = [1] * len(rows) if position == "pre" else eos_index
        for i in range(TEXT_LAYERS):
            seqs = []
            for p in range(x.shape[0]):
                a, row = at[p], x[p]
                if i == 0:  # insert, keep 77
                    seqs.append(torch.cat([row[:a], deep[0], row[a:-N_DEEP]]))
                else:  # overwrite
                    seqs.append(torch.cat([row[:a], deep[i], row[a + N_DEEP :]]))
            x = tower.block(torch.stack(seqs), i)
        x = torch.stack([torch.cat([x[p, : at[p]], x[p, at[p] + N_DEEP :]]) for p in range(x.shape[0])])
        x = F.layer_norm(x, (W,), params["dtp.prompt_norm.weight"], params["dtp.prompt_norm.bias"], 1e-6)
        x = tower.ln(x, "text_model.final_layer_norm")
        pooled = x[torch.arange(x.shape[0]), torch.tensor(eos_index)]
        feats.append(pooled @ tower.w["text_projection.weight"].T)  # [P, D]
    feats = torch.stack(feats)  # [B, P, D]
    unit = feats / feats.norm(dim=-1, keepdim=True)
    ens = unit.view(category.shape[0], -1, 2, W).mean(1)
    return ens / ens.norm(dim=-1, keepdim=True), feats.reshape(-1, W)


def post_vcp_reference(params, text, patches, scaled=False):
    """Multi-head cross-attention as the spec writes it: explicit Q, K, V (Conv1d k=1 = Linear), no scaling by default."""
    def proj(x, name):
        return F.linear(x, params[f"post_vcp.{name}_proj.weight"], params[f"post_vcp.{name}_proj.bias"])

    bsz = patches.shape[0]
    dh = DV // HEADS
    q = proj(text, "q").view(bsz, 2, HEADS, dh).transpose(1, 2)  # [B, H, 2, dh]
    k = proj(patches, "k").view(bsz, L, HEADS, dh).transpose(1, 2)  # [B, H, L, dh]
    v = proj(patches, "v").view(bsz, L, HEADS, dh).transpose(1, 2)
    attn = (q @ k.transpose(-1, -2) / (math.sqrt(dh) if scaled else 1)).softmax(-1)  # [B, H, 2, L]
    o = proj((attn @ v).transpose(1, 2).reshape(bsz, 2, DV), "o")
    return o / o.norm(dim=-1, keepdim=True), attn


def forward(params, tower, tok, bos, eos, inputs):
    g = inputs["global"]
    conv = F.conv1d(g[:, None, :], params["pre_vcp.mininet.weight"][:, None, :], params["pre_vcp.mininet.bias"], padding=1)
    category = params["pre_vcp.q"] + conv  # [B, r, W]
    text, _ = prompts_reference(tower, tok, bos, eos, category, params)
    post, _ = prompts_reference(tower, tok, bos, eos, category, params, position="post")
    out = {"pre_vcp.category": category, "text.embeddings": text, "text.embeddings_post": post}
    for i, layer in enumerate(LAYERS):
        tokens = inputs[f"patch_tokens.{i}"]
        fs = tokens / tokens.norm(dim=-1, keepdim=True)
        _, attn = post_vcp_reference(params, text, fs)
        refined, attn_scaled = post_vcp_reference(params, text, fs, scaled=True)
        out |= {f"post_vcp.{layer}.attention": attn, f"post_vcp.{layer}.embeddings_scaled": refined,
                f"post_vcp.{layer}.attention_scaled": attn_scaled}
    return out


def init_params(gen):
    """Spec inits (values only matter as a fixed starting point); layouts of the TS module."""
    def u(shape, bound):
        return (torch.rand(shape, generator=gen) * 2 - 1) * bound

    p = {
        "pre_vcp.q": torch.nn.init.trunc_normal_(torch.empty(R, W), std=1.0, generator=gen),
        "pre_vcp.mininet.weight": u((R, 3), 1 / math.sqrt(3)),
        "pre_vcp.mininet.bias": u((R,), 1 / math.sqrt(3)),
        "dtp.prompts": u((TEXT_LAYERS, N_DEEP, W), 1.0),
        "dtp.prompt_proj.weight": torch.randn(W, W, generator=gen) * math.sqrt(2 / W),
        # Perturbed from zeros / ones so a transposed or skipped term shows.
        "dtp.prompt_proj.bias": torch.randn(W, generator=gen) * 0.1,
        "dtp.prompt_norm.weight": 1 + torch.randn(W, generator=gen) * 0.2,
        "dtp.prompt_norm.bias": torch.randn(W, generator=gen) * 0.2,
    }
    for name, fan_in in (("q", W), ("k", DV), ("v", DV), ("o", DV)):
        p[f"post_vcp.{name}_proj.weight"] = u((DV, fan_in), 1 / math.sqrt(fan_in))
        p[f"post_vcp.{name}_proj.bias"] = u((DV,), 1 / math.sqrt(fan_in))
    for i in range(len(LAYERS)):
        p[f"maps.base.linear.{i}.weight"] = u((W, DV), 1 / math.sqrt(DV))
        p[f"maps.base.linear.{i}.bias"] = u((W,), 1 / math.sqrt(DV))
    # Away from log(1/0.07) ≈ 2.66 so that maps are not saturated on these random features.
    p["maps.base.logit_scale"] = torch.tensor(1.5)
    p["maps.vcp.logit_scale"] = torch.tensor(2.0)
    return {k: v.float().contiguous() for k, v in p.items()}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    tok = Tokenizer.from_file(str(TOKENIZER))
    bos, eos = tok.token_to_id("<|startoftext|>"), tok.token_to_id("<|endoftext|>")
    weights = tiny_clip(tok.get_vocab_size(), bos, eos)
    tower = TextTower(weights)
    check_tower(tower, weights, tok)

    params32 = init_params(gen)
    mask = torch.zeros(B, S, S)
    mask[0, 4:13, 6:15] = 1
    mask[1, 15:22, 2:9] = 1
    inputs32 = {f"patch_tokens.{i}": torch.randn(B, L, DV, generator=gen) * 2 for i in range(len(LAYERS))}
    inputs32["global"] = torch.randn(B, W, generator=gen)
    inputs32["masks"] = mask
    save_file(params32, OUT / "params.safetensors")
    save_file({k: v.contiguous() for k, v in inputs32.items()}, OUT / "inputs.safetensors")

    params = {k: v.double() for k, v in params32.items()}
    inputs = {k: v.double() for k, v in inputs32.items()}
    with torch.no_grad():
        out = forward(params, tower, tok, bos, eos, inputs)
    save_file({k: v.float().contiguous() for k, v in out.items()}, OUT / "golden.safetensors")

    meta = {
        "config": CONFIG,
        "tokenizer": "assets/clip/tiny-clip",
        "layers": LAYERS,
    }
    (OUT / "golden.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {OUT} ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
