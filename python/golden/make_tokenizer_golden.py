"""Golden token ids for src/model/clip/tokenizer.ts.

Two independent references must agree on every prompt before it is stored:
  * transformers' CLIPTokenizer / CLIPTokenizerFast loaded from the real CLIP tokenizer directory
    (in transformers >= 5 both names are the Rust `tokenizers` implementation; the pure-Python
    "slow" class no longer exists);
  * open_clip's SimpleTokenizer, a copy of OpenAI's original CLIP BPE (ftfy + html unescape +
    whitespace clean + lower case) with its own bundled merges file. It stands in for the slow
    tokenizer and is also the reference for padding (zeros) and truncation (EOS kept at 76).

Only the prompts and ids are written (tests/fixtures/clip/tokenizer-golden.json), never the
tokenizer files. Usage:
  .venv-golden/bin/python python/golden/make_tokenizer_golden.py [TOKENIZER_DIR]
(the golden Python of python/README.md; TOKENIZER_DIR defaults to shared/assets/clip-tokenizer beside
the checkout).
"""

import importlib.util
import json
import sys
from pathlib import Path

from transformers import CLIPTokenizer, CLIPTokenizerFast

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER_DIR = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared/assets/clip-tokenizer"
OUT = ROOT / "tests/fixtures/clip/tokenizer-golden.json"
CONTEXT = 77


def load_open_clip_tokenizer():
    # Import open_clip/tokenizer.py alone: the package's __init__ pulls in timm/torchvision.
    import importlib.metadata

    dist = importlib.metadata.distribution("open_clip_torch")
    path = Path(dist.locate_file("open_clip/tokenizer.py"))
    spec = importlib.util.spec_from_file_location("open_clip_tokenizer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SimpleTokenizer()


MVTEC = ["bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut",
         "pill", "screw", "tile", "toothbrush", "transistor", "wood", "zipper"]
VISA = ["candle", "capsules", "cashew", "chewinggum", "fryum", "macaroni1", "macaroni2",
        "pcb1", "pcb2", "pcb3", "pcb4", "pipe_fryum"]
TEMPLATES = ["a photo of a {state} {cls}.", "a cropped photo of the {state} {cls}",
             "a bad photo of a {state} {cls}.", "a close-up photo of the {state} {cls}.",
             "there is a {state} {cls} in the scene.", "a photo of a {state} [cls]"]
STATES = ["good", "damaged", "flawless", "perfect", "unblemished", "broken", "defective",
          "{cls} without flaw", "{cls} with defect"]


def prompts():
    out = []
    products = MVTEC + VISA
    for i, product in enumerate(products):
        template = TEMPLATES[i % len(TEMPLATES)]
        state = STATES[i % len(STATES)]
        name = product.replace("_", " ") if i % 2 else product
        if "{cls}" in state:  # a state phrase that already names the product
            out.append(f"a photo of the {state.format(cls=name)}.")
        else:
            out.append(template.format(state=state, cls=name))
    out += [
        "a photo of a good X",
        "a photo of a damaged [cls].",
        "A Photo Of A DAMAGED PCB1!",
        "a   photo\tof\n a  good    bottle   ",
        "it's the screw's thread, isn't it? we'll see; they'd've said.",
        "café crème brûlée naïve résumé",
        "pcb4 with 3 scratches, 12mm long (about 0.5 in) #2",
        "transistor: misplaced/bent lead -- 100% defective?!",
        "emoji 😀 and CJK 螺丝 in a prompt",
        "",
        "a",
        " ".join(["hazelnut"] * 90),  # longer than 77 tokens: truncated, EOS kept at position 76
    ]
    return out


def main():
    slow_like = load_open_clip_tokenizer()
    hf = CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR))
    hf_fast = CLIPTokenizerFast.from_pretrained(str(TOKENIZER_DIR))
    cases = []
    for text in prompts():
        ids_hf = hf(text)["input_ids"]
        ids_fast = hf_fast(text)["input_ids"]
        ids_oc = [slow_like.sot_token_id] + slow_like.encode(text) + [slow_like.eot_token_id]
        if not (ids_hf == ids_fast == ids_oc):
            raise SystemExit(f"references disagree on {text!r}:\n hf {ids_hf}\n fast {ids_fast}\n open_clip {ids_oc}")
        padded = slow_like([text], context_length=CONTEXT)[0].tolist()
        eos = padded.index(slow_like.eot_token_id)
        # open_clip pads with 0: store the padded row only up to EOS, the rest must be zeros.
        assert all(v == 0 for v in padded[eos + 1:])
        cases.append({"text": text, "ids": ids_hf, "padded": padded[: eos + 1], "eosIndex": eos})
    # Word pieces without SOS/EOS, as templates are split around a placeholder.
    pieces = ["a photo of a good", "damaged", "pcb1", "metal nut", "[cls]", "."]
    piece_ids = {p: hf(p, add_special_tokens=False)["input_ids"] for p in pieces}
    for p, ids in piece_ids.items():
        assert ids == slow_like.encode(p), p
    OUT.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "source": "python/golden/make_tokenizer_golden.py: transformers CLIPTokenizer == CLIPTokenizerFast == open_clip SimpleTokenizer",
        "contextLength": CONTEXT,
        "sot": slow_like.sot_token_id,
        "eot": slow_like.eot_token_id,
        "cases": cases,
        "pieces": piece_ids,
    }
    # One case per line: small diffs when the prompt list changes.
    body = ",\n".join(json.dumps(c, ensure_ascii=False) for c in payload.pop("cases"))
    head = json.dumps(payload, ensure_ascii=False)[:-1]
    OUT.write_text(f'{head}, "cases": [\n{body}\n]}}\n', encoding="utf-8")
    print(f"wrote {len(cases)} prompts to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
