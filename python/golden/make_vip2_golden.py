"""Golden values for src/model/methods/vip2-clip from the authors' public ViP²-CLIP code.

Runs the modules of github.com/kim0806/ViP2-CLIP (a local copy whose path is the first argument;
never committed, never downloaded here) on a tiny random CLIP that is also saved in our Hugging Face
format, and writes tests/fixtures/vip2-clip/:

- tiny-clip/{config.json, model.safetensors, tokenizer files}: the tiny CLIP (QuickGELU, vision width 64 / 1 head /
  2 blocks / patch 4 / native 16 px, text width 64 / 1 head / 1 block, projection D = 32; float16
  values), with the vocabulary of assets/clip/tiny-clip (whose tokenizer.json both sides
  use). The authors' build_model gives every tower width // 64 heads, hence width 64.
- params.safetensors: the initial ICA + FGP parameters that the authors' train() drew, in our
  checkpoint names (our_names() below; Conv1d k=1 weights [out, in, 1] → [out, in]).
- probe.safetensors: those plus seeded noise (probe_state() below says why), in our names.
- golden.safetensors + golden.json, float32, from the authors' modules at the probe parameters on
  the first training batch of train() (except adam.*):
    input.pixels [B, 3, S, S], input.masks [B, S, S], input.labels [B]   (train()'s first batch)
    clip.global [B, D]              VIP2CLIP.encode_image's global feature (cls · proj, no ln_post)
    clip.patch.<l> [B, 1+L, D]      its dense features (ln_post + proj, class token first)
    ica.prompts [2B, T, W]          ICA token embeddings, first T = n_ctx + n_cls + 3 positions
    ica.tokens [2, 77]              the token ids ICA registers (normal row, abnormal row)
    text.embeddings [B, 2, D]       normalised encode_text_learn output
    fgp.<l> [B, 2, D]               FGP output per layer
    utpa.scores.<l> [B, L, 2]       cosine scores; maps.<l> [B, S, S, 2] upsampled softmax (channels last)
    utpa.topk_mean.<l> [B, 2]       mean of the gathered top-K scores per layer; utpa.logits [B, 2]
    loss terms in golden.json (focal / dice_abnormal / dice_normal per layer, image CE, total)
    grad.<name>                     gradient of the total loss for every parameter
    adam.<name>                     parameters after train()'s first Adam step (captured from train())
    test.anomaly_map [N, S, S], test.score [N]: test() with the probe parameters saved as a
                                    checkpoint in train.py's layout (Gaussian σ = SIGMA),
                                    captured at its metrics call; its images are
                                    input.pixels in the order golden.json's test_order gives
    test_epoch.anomaly_map, test_epoch.score: test() with epoch_5.pth, likewise
- epoch_5.pth: the checkpoint train() saved ({"prompt_learner", "Zero_try"}), for `vcp-exp import
  vip2-clip`; import-expected.safetensors: its tensors in our names; import-good.pth and
  import-missing.pth: edited copies for the importer's checks (write_import_variants()).

What is the authors' code and what is not:
- train() and test() of train.py / test.py run as published, with these stand-ins (each below is
  marked STUB): VIP2CLIP_lib.load returns the authors' build_model() of the tiny CLIP instead of
  downloading ViT-L/14@336px; get_transform is replaced because torchvision is not installed (the
  images are written at S×S, so the authors' Resize is the identity; ToTensor + Normalize are
  written out); Tensor.cuda is the identity (train.py calls label.cuda() unconditionally); the
  tokenizer is the tiny vocabulary (OpenAI's 49408-entry table would make a 12 MB fixture); the
  sizes ICA / train.py / test.py hard-code for ViT-L/14 (MLP 768→384→768, FGP 768) are replaced by
  the tiny ones (D → D/2 → W, FGP D); Pillow ≥ 11.3 refuses the float64 array dataset.py passes to
  Image.fromarray(mode='L') for normal images, so that array is cast to uint8 first (it is all zero);
  pkg_resources, torchvision, cv2 and tabulate are import-only stubs.
- The intermediate tensors come from the modules called in the order of train.py's loop body
  (written out below, every step a call into the authors' code); the script asserts that one
  Adam step of that re-expression equals train()'s own first step, and that the tiny CLIP in the
  authors' model equals transformers' CLIPModel.
- Not runnable with the authors' code, so not in the goldens: the paper's intent (the global
  feature with ln_post; "good" in the normal prompt). Their code has only the quirks.

Run: .venv-golden/bin/python python/golden/make_vip2_golden.py PATH/TO/ViP2-CLIP [--commit SHA]
     (the hash-locked golden venv of python/README.md: torch, transformers, safetensors, scipy,
      scikit-learn, scikit-image, Pillow, ftfy, regex, tqdm, packaging)
"""

import argparse
import copy
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import CLIPConfig, CLIPModel

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "vip2-clip"
TOKENIZER = ROOT / "assets" / "clip" / "tiny-clip" / "tokenizer.json"
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"]

SEED = 111  # the authors' default seed
W, DV, D = 64, 64, 32  # text width, vision width, projection dim
TEXT_LAYERS, VISION_LAYERS = 1, 2
PATCH, NATIVE, S = 4, 16, 24  # native grid 4×4 → input grid 6×6 (bilinear resize)
G = S // PATCH
L = G * G
LAYERS = [1, 2]
N_CTX, N_CLS, TOPK = 7, 3, 5
EPOCHS, LR, SIGMA = 5, 1e-3, 2
PROBE_PROMPT_STD, PROBE_FGP_GAIN = 0.5, 4.0
CONTEXT = 77
# Files whose bytes the goldens depend on; their sha256 is recorded next to the commit.
SOURCES = ["prompt_learner.py", "train.py", "test.py", "loss.py", "utils.py", "dataset.py",
           "metrics.py", "VIP2CLIP_lib/VIP2CLIP.py", "VIP2CLIP_lib/build_model.py"]


# ---------------------------------------------------------------------------------------------
# The tiny CLIP, in our format and in OpenAI's (the authors' build_model reads OpenAI names).

def tiny_clip(tok: Tokenizer) -> tuple[CLIPConfig, dict[str, torch.Tensor]]:
    bos, eos = tok.token_to_id("<|startoftext|>"), tok.token_to_id("<|endoftext|>")
    config = CLIPConfig(
        text_config=dict(
            vocab_size=tok.get_vocab_size(), hidden_size=W, intermediate_size=4 * W,
            num_hidden_layers=TEXT_LAYERS, num_attention_heads=W // 64, max_position_embeddings=CONTEXT,
            hidden_act="quick_gelu", layer_norm_eps=1e-5, eos_token_id=eos, bos_token_id=bos,
            pad_token_id=eos, projection_dim=D,
        ),
        vision_config=dict(
            image_size=NATIVE, patch_size=PATCH, hidden_size=DV, intermediate_size=4 * DV,
            num_hidden_layers=VISION_LAYERS, num_attention_heads=DV // 64, hidden_act="quick_gelu",
            layer_norm_eps=1e-5, projection_dim=D,
        ),
        projection_dim=D,
    )
    torch.manual_seed(SEED)
    model = CLIPModel(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(torch.randn_like(p) * (0.3 if "norm" in name else 0.05))
    # Stored as float16 (half the fixture); both sides read the same values widened to float32.
    weights = {k: v.detach().half().float().contiguous() for k, v in model.state_dict().items()}
    return config, weights


def openai_state_dict(hf: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' CLIPModel names → OpenAI CLIP names (what VIP2CLIP_lib.build_model loads)."""
    out = {
        "visual.class_embedding": hf["vision_model.embeddings.class_embedding"],
        "visual.conv1.weight": hf["vision_model.embeddings.patch_embedding.weight"],
        "visual.positional_embedding": hf["vision_model.embeddings.position_embedding.weight"],
        "visual.ln_pre.weight": hf["vision_model.pre_layrnorm.weight"],
        "visual.ln_pre.bias": hf["vision_model.pre_layrnorm.bias"],
        "visual.ln_post.weight": hf["vision_model.post_layernorm.weight"],
        "visual.ln_post.bias": hf["vision_model.post_layernorm.bias"],
        "visual.proj": hf["visual_projection.weight"].t(),
        "token_embedding.weight": hf["text_model.embeddings.token_embedding.weight"],
        "positional_embedding": hf["text_model.embeddings.position_embedding.weight"],
        "ln_final.weight": hf["text_model.final_layer_norm.weight"],
        "ln_final.bias": hf["text_model.final_layer_norm.bias"],
        "text_projection": hf["text_projection.weight"].t(),
        "logit_scale": hf["logit_scale"],
    }
    for hf_prefix, oa_prefix, n in (("vision_model.encoder.layers", "visual.transformer.resblocks", VISION_LAYERS),
                                    ("text_model.encoder.layers", "transformer.resblocks", TEXT_LAYERS)):
        for i in range(n):
            h, o = f"{hf_prefix}.{i}", f"{oa_prefix}.{i}"
            for kind in ("weight", "bias"):
                out[f"{o}.attn.in_proj_{kind}"] = torch.cat(
                    [hf[f"{h}.self_attn.{p}_proj.{kind}"] for p in ("q", "k", "v")], 0)
                out[f"{o}.attn.out_proj.{kind}"] = hf[f"{h}.self_attn.out_proj.{kind}"]
                out[f"{o}.ln_1.{kind}"] = hf[f"{h}.layer_norm1.{kind}"]
                out[f"{o}.ln_2.{kind}"] = hf[f"{h}.layer_norm2.{kind}"]
                out[f"{o}.mlp.c_fc.{kind}"] = hf[f"{h}.mlp.fc1.{kind}"]
                out[f"{o}.mlp.c_proj.{kind}"] = hf[f"{h}.mlp.fc2.{kind}"]
    return {k: v.clone().contiguous() for k, v in out.items()}


# ---------------------------------------------------------------------------------------------
# Importing the authors' code with the stand-ins listed in the docstring.

def stub_module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    module.__vip2_golden_stub__ = True
    sys.modules[name] = module
    return module


class _Unavailable:
    """STUB: stands for a torchvision / cv2 object; only referenced at import time by the code we run."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError("stubbed in make_vip2_golden.py: not available in this environment")

    BICUBIC = BILINEAR = NEAREST = "stub"


def install_import_stubs() -> None:
    import packaging.version  # noqa: F401  (pkg_resources.packaging is this package)

    stub_module("pkg_resources", packaging=sys.modules["packaging"])  # STUB: setuptools ≥ 81 has none
    names = ["Compose", "Resize", "CenterCrop", "ToTensor", "Normalize", "InterpolationMode", "RandomResizedCrop"]
    transforms = stub_module("torchvision.transforms", **{n: _Unavailable for n in names})  # STUB
    functional = stub_module("torchvision.transforms.functional")  # STUB
    transforms.functional = functional
    stub_module("torchvision", transforms=transforms)  # STUB
    stub_module("cv2")  # STUB: only visualization.py (test --visualize) uses OpenCV
    stub_module("tabulate", tabulate=lambda rows, headers=(), **_: repr([list(headers), *rows]))  # STUB


def load_file_module(name: str, path: Path) -> types.ModuleType:
    """Loads train.py / test.py under another name (a module called `test` is Python's own package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class TinyVocabulary:
    """STUB for prompt_learner._tokenizer: the tiny CLIP's BPE (same pipeline, smaller vocabulary)."""

    def __init__(self, tok: Tokenizer):
        self.tok = tok
        self.encoder = tok.get_vocab()

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids


class Authors:
    """The authors' modules, imported from `code` with the stand-ins installed."""

    def __init__(self, code: Path, tok: Tokenizer, openai: dict[str, torch.Tensor]):
        sys.path.insert(0, str(code))
        install_import_stubs()
        import dataset
        import loss
        import prompt_learner
        import utils
        import VIP2CLIP_lib
        from VIP2CLIP_lib.build_model import build_model

        self.prompt_learner, self.loss, self.utils, self.build_model = prompt_learner, loss, utils, build_model
        self.openai = openai
        prompt_learner._tokenizer = TinyVocabulary(tok)  # STUB (tokenizer)

        original_linearlayer = prompt_learner.Linearlayer

        class SizedLinearlayer(original_linearlayer):
            # STUB (sizes): ICA hard-codes Linearlayer(768, 768) with hidden 384 for ViT-L/14, i.e.
            # (joint dim D, text width W, D / 2). The original __init__ runs with the tiny sizes; it
            # names its class through the module global (super(Linearlayer, self)), which is
            # therefore the original class while it runs.
            def __init__(self, dim_in, dim_out, k=3, hidden_dim=384, use_bais=False):
                assert (dim_in, dim_out, hidden_dim) == (768, 768, 384), (dim_in, dim_out, hidden_dim)
                prompt_learner.Linearlayer = original_linearlayer
                try:
                    original_linearlayer.__init__(self, D, W, k=k, hidden_dim=D // 2, use_bais=use_bais)
                finally:
                    prompt_learner.Linearlayer = SizedLinearlayer

        prompt_learner.Linearlayer = SizedLinearlayer

        def sized_fgp(dim_v, dim_t, dim_out, **kwargs):
            # STUB (sizes): train.py / test.py build FGP(768, 768, 768) = (D, D, D) for ViT-L/14.
            assert (dim_v, dim_t, dim_out) == (768, 768, 768)
            return prompt_learner.FGP(dim_v=D, dim_t=D, dim_out=D, **kwargs)

        self.sized_fgp = sized_fgp

        def load(name, device="cpu", design_details=None, **_):
            # STUB (weights): the authors' build_model on the tiny CLIP instead of downloading ViT-L/14@336px.
            assert name == "ViT-L/14@336px" and design_details is None
            model = build_model(name, copy.deepcopy(self.openai), design_details).to(device)
            return model.float(), None

        VIP2CLIP_lib.load = load
        self.load = load

        real_fromarray = Image.fromarray

        def fromarray(array, mode=None):
            # STUB (Pillow ≥ 11.3): dataset.py passes np.zeros (float64) with mode='L' for normal images.
            if mode == "L" and array.dtype != np.uint8:
                assert not np.any(array), "only the all-zero masks of normal images take this path"
                array = array.astype(np.uint8)
            return real_fromarray(array, mode=mode) if mode else real_fromarray(array)

        dataset.Image = types.SimpleNamespace(open=Image.open, fromarray=fromarray)
        self.dataset = dataset

        torch.Tensor.cuda = lambda self, *a, **k: self  # STUB (CUDA): train.py calls label.cuda()

        self.train = load_file_module("vip2_train", code / "train.py")
        self.test = load_file_module("vip2_test", code / "test.py")
        for module in (self.train, self.test):
            module.FGP = sized_fgp
            module.get_transform = get_transform


MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def get_transform(args):
    """STUB for utils.get_transform (torchvision is not installed): Resize to S×S bicubic is the
    identity on the S×S images written here; then ToTensor (+ Normalize with CLIP's mean/std)."""

    def to_tensor(img: Image.Image) -> torch.Tensor:
        assert img.size == (args.image_size, args.image_size)
        a = np.asarray(img, dtype=np.float32) / 255.0
        return torch.from_numpy(a[None] if a.ndim == 2 else a.transpose(2, 0, 1).copy())

    def preprocess(img: Image.Image) -> torch.Tensor:
        x = to_tensor(img.convert("RGB"))
        return (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]

    return preprocess, to_tensor


# ---------------------------------------------------------------------------------------------
# Data: a meta.json dataset (AnomalyCLIP layout) of S×S PNGs, 2 normal and 2 anomalous images.

def write_dataset(root: Path) -> list[dict]:
    rng = np.random.default_rng(SEED)
    entries = []
    for i, (anomaly, box) in enumerate([(0, None), (1, (3, 14, 5, 17)), (0, None), (1, (12, 22, 2, 10))]):
        img = (rng.random((S, S, 3)) * 255).astype(np.uint8)
        mask_path = ""
        if box:
            y0, y1, x0, x1 = box
            img[y0:y1, x0:x1] = np.clip(img[y0:y1, x0:x1].astype(int) // 3 + 160, 0, 255)
            mask = np.zeros((S, S), np.uint8)
            mask[y0:y1, x0:x1] = 255
            mask_path = f"pcb/ground_truth/{i:03d}_mask.png"
            (root / mask_path).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(root / mask_path)
        img_path = f"pcb/test/{i:03d}.png"
        (root / img_path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / img_path)
        entries.append(dict(img_path=img_path, mask_path=mask_path, cls_name="pcb",
                            specie_name="bad" if anomaly else "good", anomaly=anomaly))
    (root / "meta.json").write_text(json.dumps({"train": {}, "test": {"pcb": entries}}))
    return entries


# ---------------------------------------------------------------------------------------------
# Our checkpoint names for the authors' state dicts.

def our_names(ica: dict, fgp: dict) -> dict[str, torch.Tensor]:
    """ICA ('prompt_learner') and FGP ('Zero_try') state → our parameter names and layouts."""
    out = {
        "ica.context_normal": ica["ctx_pos"],
        "ica.context_abnormal": ica["ctx_neg"],
        "ica.class_tokens": ica["cls_ctx"],
        "ica.meta_net.bias": ica["cls_prompter.bias"].reshape(-1),
    }
    for j in range(N_CLS):
        out[f"ica.meta_net.{j}.fc1.weight"] = ica[f"cls_prompter.fc.{j}.0.weight"]
        out[f"ica.meta_net.{j}.fc1.bias"] = ica[f"cls_prompter.fc.{j}.0.bias"]
        out[f"ica.meta_net.{j}.fc2.weight"] = ica[f"cls_prompter.fc.{j}.2.weight"]
        out[f"ica.meta_net.{j}.fc2.bias"] = ica[f"cls_prompter.fc.{j}.2.bias"]
    for ours, theirs in (("q", "q_proj_pre"), ("k", "k_proj_pre_1"), ("v", "v_proj_pre_1"), ("o", "proj_post_t")):
        out[f"fgp.{ours}_proj.weight"] = fgp[f"{theirs}.weight"][:, :, 0]
        out[f"fgp.{ours}_proj.bias"] = fgp[f"{theirs}.bias"]
    return {k: v.detach().float().clone().contiguous() for k, v in out.items()}


def named_parameters(ica, fgp) -> dict[str, torch.nn.Parameter]:
    """Our name → the authors' Parameter object (the unused FGP temperature has no name of ours)."""
    ica_p, fgp_p = dict(ica.named_parameters()), dict(fgp.named_parameters())
    out = {
        "ica.context_normal": ica_p["ctx_pos"], "ica.context_abnormal": ica_p["ctx_neg"],
        "ica.class_tokens": ica_p["cls_ctx"], "ica.meta_net.bias": ica_p["cls_prompter.bias"],
    }
    for j in range(N_CLS):
        out[f"ica.meta_net.{j}.fc1.weight"] = ica_p[f"cls_prompter.fc.{j}.0.weight"]
        out[f"ica.meta_net.{j}.fc1.bias"] = ica_p[f"cls_prompter.fc.{j}.0.bias"]
        out[f"ica.meta_net.{j}.fc2.weight"] = ica_p[f"cls_prompter.fc.{j}.2.weight"]
        out[f"ica.meta_net.{j}.fc2.bias"] = ica_p[f"cls_prompter.fc.{j}.2.bias"]
    for ours, theirs in (("q", "q_proj_pre"), ("k", "k_proj_pre_1"), ("v", "v_proj_pre_1"), ("o", "proj_post_t")):
        out[f"fgp.{ours}_proj.weight"] = fgp_p[f"{theirs}.weight"]
        out[f"fgp.{ours}_proj.bias"] = fgp_p[f"{theirs}.bias"]
    return out


def as_ours(name: str, t: torch.Tensor) -> torch.Tensor:
    t = t.detach().float()
    if name.startswith("fgp.") and name.endswith(".weight"):
        t = t[:, :, 0]
    if name == "ica.meta_net.bias":
        t = t.reshape(-1)
    return t.clone().contiguous()


# ---------------------------------------------------------------------------------------------

def args_namespace(data: Path, save: Path, **extra) -> argparse.Namespace:
    return argparse.Namespace(
        train_data_path=str(data), data_path=str(data), save_path=str(save), dataset="pcb",
        n_ctx=N_CTX, n_cls=N_CLS, topk=TOPK, feature_map_layer=list(range(len(LAYERS))),
        features_list=LAYERS, epoch=EPOCHS, learning_rate=LR, batch_size=4, image_size=S,
        print_freq=1, save_freq=EPOCHS, seed=SEED, sigma=SIGMA, metrics="image-pixel-level",
        visualize=False, **extra,
    )


def run_train(authors: Authors, data: Path, save: Path) -> dict:
    """train.train(args) as published; records the order of the first batch, the initial
    ICA/FGP state and the parameters after the first Adam step."""
    record: dict = {"indices": [], "initial": {}, "after_first_step": None}
    base_dataset = authors.train.Dataset

    class RecordingDataset(base_dataset):
        def __getitem__(self, index):
            record["indices"].append(index)
            return super().__getitem__(index)

    class RecordingICA(authors.prompt_learner.ICA):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            record["ica"] = self
            record["initial"]["ica"] = copy.deepcopy(self.state_dict())

    fgp_factory = authors.train.FGP

    def recording_fgp(*args, **kwargs):
        fgp = fgp_factory(*args, **kwargs)
        record["fgp"] = fgp
        record["initial"]["fgp"] = copy.deepcopy(fgp.state_dict())
        return fgp

    real_adam = torch.optim.Adam

    class RecordingAdam(real_adam):
        def step(self, closure=None):
            result = super().step(closure)
            if record["after_first_step"] is None:
                record["after_first_step"] = {
                    name: as_ours(name, p) for name, p in named_parameters(record["ica"], record["fgp"]).items()
                }
                record["groups"] = [(g["lr"], len(g["params"])) for g in self.param_groups]
            return result

    authors.train.Dataset, authors.train.ICA, authors.train.FGP = RecordingDataset, RecordingICA, recording_fgp
    torch.optim.Adam = RecordingAdam
    try:
        authors.train.setup_seed(SEED)
        authors.train.train(args_namespace(data, save))
    finally:
        torch.optim.Adam = real_adam
        authors.train.Dataset, authors.train.ICA, authors.train.FGP = base_dataset, authors.prompt_learner.ICA, fgp_factory
    return record


def run_test(authors: Authors, data: Path, save: Path, checkpoint: Path) -> dict:
    """test.test(args) as published; its per-product results are captured at the metrics call."""
    captured: dict = {}
    real_metrics = authors.test.image_level_metrics

    def capturing_metrics(results, obj, metric):
        captured.setdefault(obj, {k: results[obj][k] for k in ("anomaly_maps", "pr_sp", "gt_sp", "imgs_masks")})
        return real_metrics(results, obj, metric)

    authors.test.image_level_metrics = capturing_metrics
    try:
        authors.test.setup_seed(SEED)
        authors.test.test(args_namespace(data, save, checkpoint_path=str(checkpoint)))
    finally:
        authors.test.image_level_metrics = real_metrics
    return captured["pcb"]


def forward_like_train(authors: Authors, model, ica, fgp, image, gt, label, out: dict) -> tuple[torch.Tensor, dict]:
    """The body of train.py's loop, step by step, recording every intermediate tensor."""
    FocalLoss, BinaryDiceLoss = authors.loss.FocalLoss, authors.loss.BinaryDiceLoss
    get_similarity_map = authors.utils.get_similarity_map
    loss_focal, loss_dice = FocalLoss(), BinaryDiceLoss()
    with torch.no_grad():
        image_features, patch_features = model.encode_image(image, LAYERS)
        out["clip.global"] = image_features.clone()
        for l, p in zip(LAYERS, patch_features):
            out[f"clip.patch.{l}"] = p.clone()
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)

    prompts, tokenized_prompts = ica(image_features)
    out["ica.prompts"] = prompts[:, : N_CTX + N_CLS + 3]
    out["ica.tokens"] = torch.stack([ica.tokenized_prompts_pos[0], ica.tokenized_prompts_neg[0]])
    text_embeddings = model.encode_text_learn(prompts, tokenized_prompts).float()
    text_embeddings = torch.stack(torch.chunk(text_embeddings, dim=0, chunks=2), dim=1)
    text_embeddings = text_embeddings / text_embeddings.norm(dim=-1, keepdim=True)
    out["text.embeddings"] = text_embeddings

    similarity_map_list, anomaly_score_list = [], []
    for l, patch_feature in zip(LAYERS, patch_features):
        patch_feature = patch_feature / patch_feature.norm(dim=-1, keepdim=True)
        aux_text_embeddings = fgp(text_embeddings, patch_feature[:, 1:, :])
        out[f"fgp.{l}"] = aux_text_embeddings
        similarity = torch.matmul(patch_feature[:, 1:, :], aux_text_embeddings.transpose(1, 2))
        scores = similarity
        out[f"utpa.scores.{l}"] = scores
        similarity = (similarity / 0.07).softmax(dim=-1)
        similarity_map = get_similarity_map(similarity, S).permute(0, 3, 1, 2)
        out[f"maps.{l}"] = similarity_map.permute(0, 2, 3, 1)
        similarity_map_list.append(similarity_map)
        _, topk_indices = torch.topk(similarity[:, :, 1], k=TOPK, dim=-1, largest=True, sorted=False)
        batch_indices = torch.arange(scores.size(0)).unsqueeze(1).expand(-1, TOPK)
        topk_scores = scores[batch_indices, topk_indices]
        out[f"utpa.topk_mean.{l}"] = topk_scores.mean(1)
        out[f"utpa.topk_index.{l}"] = topk_indices.sort(dim=-1).values.int()
        anomaly_score_list.append(topk_scores)

    mean_score = torch.mean(torch.cat(anomaly_score_list, dim=1), dim=1) / 0.07
    out["utpa.logits"] = mean_score
    anomaly_loss = torch.nn.functional.cross_entropy(mean_score, label.long())
    terms = {"image_ce": anomaly_loss}
    loss = 0
    for l, m in zip(LAYERS, similarity_map_list):
        terms[f"focal.{l}"] = loss_focal(m, gt)
        terms[f"dice_abnormal.{l}"] = loss_dice(m[:, 1, :, :], gt)
        terms[f"dice_normal.{l}"] = loss_dice(m[:, 0, :, :], 1 - gt)
        loss = loss + terms[f"focal.{l}"] + terms[f"dice_abnormal.{l}"] + terms[f"dice_normal.{l}"]
    total = loss + anomaly_loss
    terms["total"] = total
    return total, {k: float(v.detach()) for k, v in terms.items()}


def write_import_variants(trained: dict, hf: dict, tok: Tokenizer) -> None:
    """Edited copies of train()'s checkpoint for the importer's checks (large unused buffers
    dropped): import-good.pth froze the embedding of "good" in the normal prompt (the paper's
    intent, which the public code never writes), import-missing.pth lacks two tensors."""
    # clone(): the frozen-embedding buffers are views of one [1, 77, W] storage, saved whole otherwise.
    ica = {k: v.clone() for k, v in trained["prompt_learner"].items() if not k.startswith("token_suffix")}
    fgp = {k: v.clone() for k, v in trained["Zero_try"].items()}
    good = hf["text_model.embeddings.token_embedding.weight"][tok.token_to_id("good</w>")]
    torch.save({"prompt_learner": {**ica, "token_middle_pos": good.reshape(1, 1, -1).clone()}, "Zero_try": fgp},
               OUT / "import-good.pth")
    del ica["ctx_neg"], fgp["q_proj_pre.weight"]
    torch.save({"prompt_learner": ica, "Zero_try": fgp}, OUT / "import-missing.pth")


def build_learners(authors: Authors, ica_state: dict, fgp_state: dict):
    """The authors' CLIP, ICA and FGP (as train.py builds them) with the given state, train mode."""
    model, _ = authors.load("ViT-L/14@336px", device="cpu")
    model.eval()
    ica = authors.prompt_learner.ICA(["pcb"], model, {"Prompt_length": N_CTX, "Prompt_cls_length": N_CLS})
    ica.load_state_dict(ica_state)
    fgp = authors.sized_fgp(dim_v=768, dim_t=768, dim_out=768)
    fgp.load_state_dict(fgp_state)
    ica.train(), fgp.train()
    return ica, fgp, model


def probe_state(ica_state: dict, fgp_state: dict) -> tuple[dict, dict]:
    """The initial state plus seeded noise. At the initial state (prompt vectors N(0, 0.02²)) the
    normal and abnormal prompts are nearly the same and every map is 0.5 ± 6e-4, too flat to tell
    a right implementation from a wrong one at 1e-4; larger prompt vectors and FGP weights give
    maps and scores that spread. Buffers (token ids, fixed embeddings) are kept."""
    gen = torch.Generator().manual_seed(SEED + 1)
    ica, fgp = copy.deepcopy(ica_state), copy.deepcopy(fgp_state)
    for key in ("ctx_pos", "ctx_neg", "cls_ctx", "cls_prompter.bias"):
        ica[key] = ica[key] + torch.randn(ica[key].shape, generator=gen) * PROBE_PROMPT_STD
    for key in list(fgp):
        if key.endswith(".weight"):
            fgp[key] = fgp[key] * PROBE_FGP_GAIN
    return ica, fgp


def source_commit(code: Path, given: str | None) -> str:
    if given:
        return given
    try:
        return subprocess.run(["git", "-C", str(code), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        sys.exit(f"{code} is not a git work tree: pass --commit SHA (the ViP2-CLIP commit of this copy)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("code", type=Path, help="a local copy of github.com/kim0806/ViP2-CLIP")
    parser.add_argument("--commit", help="its commit, when the copy is not a git work tree")
    cli = parser.parse_args()
    code = cli.code.resolve()
    if not (code / "prompt_learner.py").is_file():
        sys.exit(f"{code}: no prompt_learner.py here; pass the root of a ViP2-CLIP checkout")
    commit = source_commit(code, cli.commit)

    tok = Tokenizer.from_file(str(TOKENIZER))
    config, hf_weights = tiny_clip(tok)
    openai = openai_state_dict(hf_weights)
    authors = Authors(code, tok, openai)
    check_tiny_clip(authors, config, hf_weights, tok)

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "tiny-clip").mkdir(exist_ok=True)
    config.save_pretrained(OUT / "tiny-clip")
    save_file({k: v.half() if v.is_floating_point() else v for k, v in hf_weights.items()},
              OUT / "tiny-clip" / "model.safetensors", metadata={"format": "pt"})
    for name in TOKENIZER_FILES:  # a complete checkpoint directory: `--clip` of vcp-exp import
        shutil.copyfile(TOKENIZER.parent / name, OUT / "tiny-clip" / name)

    with tempfile.TemporaryDirectory() as tmp:
        data, save = Path(tmp) / "data", Path(tmp) / "save"
        write_dataset(data)
        record = run_train(authors, data, save)
        shutil.copyfile(save / f"epoch_{EPOCHS}.pth", OUT / f"epoch_{EPOCHS}.pth")

        # The first training batch, in the order train()'s shuffled loader drew it.
        preprocess, target = get_transform(argparse.Namespace(image_size=S))
        ds = authors.dataset.Dataset(root=str(data), transform=preprocess, target_transform=target,
                                     dataset_name="pcb")
        first = record["indices"][:4]
        items = [ds[i] for i in first]
        image = torch.stack([it["img"] for it in items])
        gt = torch.stack([it["img_mask"] for it in items]).squeeze()
        gt[gt > 0.5], gt[gt <= 0.5] = 1, 0
        label = torch.tensor([it["anomaly"] for it in items])
        test_order = [first.index(i) for i in range(len(ds))]
        assert torch.equal(torch.stack([ds[i]["img"] for i in range(len(ds))]), image[test_order])

        # train()'s first step re-expressed from the initial parameters it drew: must be the same step.
        ica, fgp, model = build_learners(authors, record["initial"]["ica"], record["initial"]["fgp"])
        total, _ = forward_like_train(authors, model, ica, fgp, image, gt, label, {})
        total.backward()
        params = named_parameters(ica, fgp)
        torch.optim.Adam([{"params": ica.parameters(), "lr": LR},
                          {"params": fgp.parameters(), "lr": LR * 0.01}]).step()
        worst = max((as_ours(k, p) - record["after_first_step"][k]).abs().max().item() for k, p in params.items())
        assert worst < 1e-6, f"the re-expressed step differs from train()'s first step by {worst}"

        # Forward goldens at probe parameters (see probe_state); test() runs on them as a checkpoint.
        probe_ica, probe_fgp = probe_state(record["initial"]["ica"], record["initial"]["fgp"])
        torch.save({"prompt_learner": probe_ica, "Zero_try": probe_fgp}, Path(tmp) / "probe.pth")
        test_results = run_test(authors, data, Path(tmp) / "test", Path(tmp) / "probe.pth")
        # And on train()'s own checkpoint, the file `vcp-exp import vip2-clip` is tested on.
        epoch_results = run_test(authors, data, Path(tmp) / "test5", save / f"epoch_{EPOCHS}.pth")

    ica, fgp, model = build_learners(authors, probe_ica, probe_fgp)
    golden: dict[str, torch.Tensor] = {"input.pixels": image, "input.masks": gt, "input.labels": label.float()}
    total, losses = forward_like_train(authors, model, ica, fgp, image, gt, label, golden)
    total.backward()
    for name, p in named_parameters(ica, fgp).items():
        golden[f"grad.{name}"] = as_ours(name, p.grad if p.grad is not None else torch.zeros_like(p))
    golden |= {f"adam.{k}": v for k, v in record["after_first_step"].items()}
    golden["test.anomaly_map"] = torch.from_numpy(np.asarray(test_results["anomaly_maps"], dtype=np.float32))
    golden["test.score"] = torch.tensor([float(s) for s in test_results["pr_sp"]])
    golden["test.labels"] = torch.tensor([float(s) for s in test_results["gt_sp"]])
    golden["test_epoch.anomaly_map"] = torch.from_numpy(np.asarray(epoch_results["anomaly_maps"], dtype=np.float32))
    golden["test_epoch.score"] = torch.tensor([float(s) for s in epoch_results["pr_sp"]])

    save_file(our_names(record["initial"]["ica"], record["initial"]["fgp"]), OUT / "params.safetensors")
    save_file(our_names(probe_ica, probe_fgp), OUT / "probe.safetensors")
    trained = torch.load(OUT / f"epoch_{EPOCHS}.pth", map_location="cpu")
    write_import_variants(trained, hf_weights, tok)
    save_file(our_names(trained["prompt_learner"], trained["Zero_try"]), OUT / "import-expected.safetensors")
    save_file({k: v.detach().float().contiguous() if v.is_floating_point() else v.int().contiguous()
               for k, v in golden.items()}, OUT / "golden.safetensors")

    meta = {
        "description": __doc__.split("What is the authors'")[0].strip(),
        "source": {"repository": "github.com/kim0806/ViP2-CLIP", "commit": commit,
                   "sha256": {f: hashlib.sha256((code / f).read_bytes()).hexdigest() for f in SOURCES}},
        "config": {
            "backbone": "tiny", "image_size": S, "layers": LAYERS, "n_ctx": N_CTX, "n_cls": N_CLS,
            "topk": TOPK, "lr": LR, "sigma": SIGMA, "seed": SEED,
        },
        "shapes": {"W": W, "D": D, "Dv": DV, "L": L, "S": S, "batch": 4},
        "tokenizer": "assets/clip/tiny-clip",
        "losses": losses,
        "train": {"epochs": EPOCHS, "first_batch": first, "adam_groups": record["groups"]},
        "test_order": test_order,
        "provenance": " ".join(("What is the authors'" + __doc__.split("What is the authors'")[1].split("Run:")[0]).split()),
    }
    (OUT / "golden.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {OUT} ({size / 1024:.0f} KiB), loss {losses['total']:.6f}, re-expressed step Δ {worst:.2e}")


def check_tiny_clip(authors: Authors, config: CLIPConfig, hf: dict, tok: Tokenizer) -> None:
    """The authors' model built from the converted weights equals transformers' CLIPModel."""
    config._attn_implementation = "eager"
    reference = CLIPModel(config)
    reference.load_state_dict(hf, strict=True)
    reference.eval()
    model, _ = authors.load("ViT-L/14@336px")
    pixels = torch.randn(2, 3, NATIVE, NATIVE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        glob, patches = model.encode_image(pixels, [VISION_LAYERS])
        hidden = reference.vision_model(pixel_values=pixels, output_hidden_states=True).hidden_states[-1]
        proj = reference.visual_projection
        assert torch.allclose(glob, proj(hidden[:, 0]), atol=1e-5), "global: cls · proj without ln_post"
        assert torch.allclose(patches[0], proj(reference.vision_model.post_layernorm(hidden)), atol=1e-5)
        ids = torch.zeros(1, CONTEXT, dtype=torch.long)
        row = tok.encode("a photo of a damaged object").ids
        ids[0, : len(row)] = torch.tensor(row)
        # encode_text itself fails without deep prompts (it passes text_prompt= to blocks that take
        # none); encode_text_learn is the path ICA's prompts take.
        ours = model.encode_text_learn(model.token_embedding(ids), ids)
        theirs = reference.get_text_features(input_ids=ids)
        theirs = getattr(theirs, "pooler_output", theirs)
        assert torch.allclose(ours, theirs, atol=1e-5), "text tower"


if __name__ == "__main__":
    main()
