#!/usr/bin/env python3
"""Writes a tiny .pth with the key names and layouts of the public VCP-CLIP train.py's
checkpoints (random values), for tests of vcp_clip_pth.py. Like train.py it saves the modules'
state_dict()s (OrderedDicts with _metadata) and the CLIP prompt nn.Parameters at top level.
Also writes the same values under their PyTorch names as safetensors, so a test can set them
directly and compare, and with --expected the converter's tensors computed through torch.load
(weights_only) and safetensors.torch, which the torch-free reader's output must equal exactly.
Needs torch and safetensors (the golden Python, python/README.md). The committed fixture is regenerated with:
  .venv-golden/bin/python python/convert/make_test_pth.py tests/fixtures/vcp-clip/tiny-public.pth \\
      tests/fixtures/vcp-clip/tiny-public-reference.safetensors --expected tests/fixtures/vcp-clip/tiny-public-expected.safetensors
Usage: make_test_pth.py OUT.pth OUT_reference.safetensors [--expected OUT_expected.safetensors]
       --r 2 --n 1 --width 32 --vision 16 --embed 32 --text-layers 3 --layers 2
"""
import argparse
import os
import sys

import torch
from safetensors.torch import save_file


def module_with(params):
    """An nn.Module whose state_dict() has exactly these dotted names, in this order."""
    root = torch.nn.Module()
    for name, value in params.items():
        *path, leaf = name.split('.')
        m = root
        for part in path:
            if not hasattr(m, part):
                m.add_module(part, torch.nn.Module())
            m = getattr(m, part)
        m.register_parameter(leaf, torch.nn.Parameter(value))
    return root


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('pth')
    ap.add_argument('reference')
    ap.add_argument('--expected', help='also write the converted tensors, read through torch.load, here')
    for name, default in (('r', 2), ('n', 1), ('width', 32), ('vision', 16), ('embed', 32), ('text-layers', 3), ('layers', 2)):
        ap.add_argument(f'--{name}', type=int, default=default)
    a = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    rnd = lambda *shape: torch.randn(*shape, generator=g) * 0.3
    W, Dv, D = a.width, a.vision, a.embed
    parts = {
        'trainable_linearlayer': {k: v for i in range(a.layers) for k, v in ((f'fc.{i}.weight', rnd(D, Dv)), (f'fc.{i}.bias', rnd(D)))},
        'New_Lan_Embed': {'prompt_query': rnd(1, a.r, W), 'prompt_linear1.fc.weight': rnd(a.r, 1, 3), 'prompt_linear1.fc.bias': rnd(a.r), 'prompt_temp': torch.tensor(2.5)},
        'Zero_try': {
            'q_proj_pre.weight': rnd(Dv, D, 1), 'q_proj_pre.bias': rnd(Dv),
            'k_proj_pre_1.weight': rnd(Dv, Dv, 1), 'k_proj_pre_1.bias': rnd(Dv),
            'v_proj_pre_1.weight': rnd(Dv, Dv, 1), 'v_proj_pre_1.bias': rnd(Dv),
            'proj_post_t.weight': rnd(Dv, Dv, 1), 'proj_post_t.bias': rnd(Dv),
            'prompt_temp_l1': torch.tensor(3.0),
        },
    }
    prompts = {
        'prompt_text_projection': rnd(W, D),
        'prompt_embeddings': rnd(1, a.n, W),
        'deep_prompt_embeddings': rnd(a.text_layers - 1, a.n, W),
        # Views (a transpose; a slice at an offset in a shared storage), to exercise the reader's
        # stride and offset handling.
        'prompt_proj.weight': rnd(W, W).t(), 'prompt_proj.bias': rnd(W),
        'prompt_norm.weight': 1 + rnd(W), 'prompt_norm.bias': rnd(3, W)[1],
    }
    state = {k: module_with(v).state_dict() for k, v in parts.items()}
    state.update({k: torch.nn.Parameter(v) for k, v in prompts.items()})  # train.py: save_dict.update(model_optim)
    torch.save(state, a.pth)

    flat = {f'{k}.{kk}': vv.contiguous() for k, v in parts.items() for kk, vv in v.items()}
    flat.update({k: v.contiguous() for k, v in prompts.items()})
    save_file(flat, a.reference)

    if a.expected:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import vcp_clip_pth
        tensors, _, _ = vcp_clip_pth.convert(vcp_clip_pth.load(a.pth, 'torch'))
        save_file({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, a.expected)


if __name__ == '__main__':
    main()
