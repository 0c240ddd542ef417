#!/usr/bin/env python3
"""Writes a tiny .pth with the key names and layouts of the public VCP-CLIP train.py's
checkpoints (random values), for tests of vcp_clip_pth.py. Also writes the same values under
their PyTorch names as safetensors, so a test can set them directly and compare.
Usage: make_test_pth.py OUT.pth OUT_reference.safetensors --r 2 --n 1 --width 32 --vision 16 --embed 32 --text-layers 3 --layers 2
"""
import argparse
import torch
from safetensors.torch import save_file

ap = argparse.ArgumentParser()
ap.add_argument('pth')
ap.add_argument('reference')
for name, default in (('r', 2), ('n', 1), ('width', 32), ('vision', 16), ('embed', 32), ('text-layers', 3), ('layers', 2)):
    ap.add_argument(f'--{name}', type=int, default=default)
a = ap.parse_args()
g = torch.Generator().manual_seed(0)
rnd = lambda *shape: torch.randn(*shape, generator=g) * 0.3
W, Dv, D = a.width, a.vision, a.embed
state = {
    'trainable_linearlayer': {k: v for i in range(a.layers) for k, v in ((f'fc.{i}.weight', rnd(D, Dv)), (f'fc.{i}.bias', rnd(D)))},
    'New_Lan_Embed': {'prompt_query': rnd(1, a.r, W), 'prompt_linear1.fc.weight': rnd(a.r, 1, 3), 'prompt_linear1.fc.bias': rnd(a.r), 'prompt_temp': torch.tensor(2.5)},
    'Zero_try': {
        'q_proj_pre.weight': rnd(Dv, D, 1), 'q_proj_pre.bias': rnd(Dv),
        'k_proj_pre_1.weight': rnd(Dv, Dv, 1), 'k_proj_pre_1.bias': rnd(Dv),
        'v_proj_pre_1.weight': rnd(Dv, Dv, 1), 'v_proj_pre_1.bias': rnd(Dv),
        'proj_post_t.weight': rnd(Dv, Dv, 1), 'proj_post_t.bias': rnd(Dv),
        'prompt_temp_l1': torch.tensor(3.0),
    },
    'prompt_text_projection': rnd(W, D),
    'prompt_embeddings': rnd(1, a.n, W),
    'deep_prompt_embeddings': rnd(a.text_layers - 1, a.n, W),
    'prompt_proj.weight': rnd(W, W), 'prompt_proj.bias': rnd(W),
    'prompt_norm.weight': 1 + rnd(W), 'prompt_norm.bias': rnd(W),
}
torch.save(state, a.pth)
flat = {}
for k, v in state.items():
    if isinstance(v, dict):
        flat.update({f'{k}.{kk}': vv.contiguous() for kk, vv in v.items()})
    else:
        flat[k] = v.contiguous()
save_file(flat, a.reference)
