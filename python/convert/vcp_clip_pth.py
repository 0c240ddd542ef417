#!/usr/bin/env python3
"""Converts a checkpoint of the public VCP-CLIP implementation (.pth saved by its train.py) to
the vcp-exp checkpoint format: model.safetensors with our parameter names + config.json.

The .pth holds: 'trainable_linearlayer' (fc.<i>.weight/bias: the per-layer Linear_l of the
baseline branch), 'New_Lan_Embed' (prompt_query [1, r, W] = q, prompt_linear1.fc.weight/bias =
the Pre-VCP Mini-Net Conv1d, prompt_temp = tau_1), 'Zero_try' (Post-VCP Conv1d k=1 projections
q_proj_pre / k_proj_pre_1 / v_proj_pre_1 / proj_post_t, prompt_temp_l1 = tau_2), and the CLIP
model's 'prompt*' parameters at top level (prompt_embeddings [1, n, W] = P_0,
deep_prompt_embeddings [layers-1, n, W] = P_1.., prompt_proj, prompt_norm;
prompt_text_projection is unused by the forward and dropped).

Needs Python 3 with numpy only, not torch: the .pth (torch.save's zip format) is read by
torch_zip.py, which rebuilds the tensors byte for byte and runs no pickled code. torch (if
installed) is used only for a legacy non-zip .pth (torch < 1.6) or with --loader torch.
A checkpoint wrapped in {'state_dict': ...}, {'model': ...} or {'checkpoint': ...} is unwrapped. Usage:
  vcp_clip_pth.py CHECKPOINT.pth OUT_DIR --clip-dir DIR | --clip-sha256 HEX [--clip-name NAME]
                  [--layers 6 12 18 24] [--image-size 518] [--backbone ViT-L-14-336] [--alpha 0.8]
                  [--loader auto|pure|torch]
"""
import argparse
import datetime
import hashlib
import json
import os
import shutil
import sys
import tempfile

import numpy as np

import torch_zip

PARTS = ('trainable_linearlayer', 'New_Lan_Embed', 'Zero_try')


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def need(d, key, where):
    if key not in d:
        sys.exit(f'{where}: missing "{key}" (keys: {", ".join(sorted(d.keys()))})')
    if not isinstance(d[key], np.ndarray):
        sys.exit(f'{where}: "{key}" is a {type(d[key]).__name__}, not a tensor')
    return np.ascontiguousarray(d[key], dtype=np.float32)


def unwrap(state):
    if not isinstance(state, dict):
        sys.exit(f'not a VCP-CLIP checkpoint: the .pth holds a {type(state).__name__}, not a dict')
    if all(part in state for part in PARTS):
        return state
    for key in ('state_dict', 'model', 'checkpoint'):
        inner = state.get(key)
        if isinstance(inner, dict) and all(part in inner for part in PARTS):
            return inner
    missing = next(part for part in PARTS if part not in state)
    sys.exit(f'not a VCP-CLIP checkpoint: no "{missing}" (top-level keys: {", ".join(sorted(map(str, state.keys())))})')


def load_torch(path):
    try:
        import torch
    except ImportError:
        sys.exit(f'{path}: reading it with torch.load (--loader torch, or a legacy non-zip .pth from torch < 1.6) needs torch: '
                 'pip install torch, or re-save the .pth with torch >= 1.6')

    def to_numpy(v):
        if isinstance(v, dict):
            return {k: to_numpy(x) for k, x in v.items()}
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu()
            return (v.float() if v.dtype == torch.bfloat16 else v).numpy()
        return v
    # weights_only: tensors and dicts only, no pickled code runs.
    return to_numpy(torch.load(path, map_location='cpu', weights_only=True))


def load(path, loader):
    if loader == 'torch' or (loader == 'auto' and not torch_zip.is_torch_zip(path)):
        return load_torch(path)
    try:
        return torch_zip.load(path)
    except torch_zip.FormatError as e:
        sys.exit(f'{path}: {e}')


def save_safetensors(tensors, path, metadata):
    """safetensors layout: u64 header length, JSON header (space-padded to 8 bytes), raw data."""
    header, offset = {'__metadata__': metadata}, 0
    for name in sorted(tensors):
        size = tensors[name].nbytes
        header[name] = {'dtype': 'F32', 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(len(text).to_bytes(8, 'little'))
        f.write(text)
        for name in sorted(tensors):
            f.write(tensors[name].astype('<f4').tobytes())


def convert(state):
    state = unwrap(state)
    out = {}
    pre = state['New_Lan_Embed']
    q = need(pre, 'prompt_query', 'New_Lan_Embed')  # [1, r, W]
    out['pre_vcp.q'] = q[0]
    out['pre_vcp.mininet.weight'] = need(pre, 'prompt_linear1.fc.weight', 'New_Lan_Embed')[:, 0, :]  # [r, 1, 3] -> [r, 3]
    out['pre_vcp.mininet.bias'] = need(pre, 'prompt_linear1.fc.bias', 'New_Lan_Embed')
    out['maps.base.logit_scale'] = need(pre, 'prompt_temp', 'New_Lan_Embed').reshape([])

    post = state['Zero_try']
    for ours, theirs in (('q', 'q_proj_pre'), ('k', 'k_proj_pre_1'), ('v', 'v_proj_pre_1'), ('o', 'proj_post_t')):
        out[f'post_vcp.{ours}_proj.weight'] = need(post, f'{theirs}.weight', 'Zero_try')[:, :, 0]  # Conv1d k=1 [out, in, 1]
        out[f'post_vcp.{ours}_proj.bias'] = need(post, f'{theirs}.bias', 'Zero_try')
    out['maps.vcp.logit_scale'] = need(post, 'prompt_temp_l1', 'Zero_try').reshape([])

    lin = state['trainable_linearlayer']
    layers = sorted({int(k.split('.')[1]) for k in lin if k.startswith('fc.')})
    for i in layers:
        out[f'maps.base.linear.{i}.weight'] = need(lin, f'fc.{i}.weight', 'trainable_linearlayer')
        out[f'maps.base.linear.{i}.bias'] = need(lin, f'fc.{i}.bias', 'trainable_linearlayer')

    dtp = 'deep_prompt_embeddings' in state
    p0 = need(state, 'prompt_embeddings', 'CLIP prompt parameters')  # [1, n, W]
    if dtp:
        out['dtp.prompts'] = np.concatenate([p0, need(state, 'deep_prompt_embeddings', 'CLIP prompt parameters')], 0)
        out['dtp.prompt_proj.weight'] = need(state, 'prompt_proj.weight', 'CLIP prompt parameters')
        out['dtp.prompt_proj.bias'] = need(state, 'prompt_proj.bias', 'CLIP prompt parameters')
        out['dtp.prompt_norm.weight'] = need(state, 'prompt_norm.weight', 'CLIP prompt parameters')
        out['dtp.prompt_norm.bias'] = need(state, 'prompt_norm.bias', 'CLIP prompt parameters')
    config = {'n_ctx': int(q.shape[1]), 'deep_prompt_len': int(p0.shape[1]), 'dtp': dtp, 'pre_vcp': True, 'post_vcp': True,
              'activation': 'gelu', 'heads': 8, 'attention_scaling': False}
    return out, config, len(layers)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('pth')
    ap.add_argument('out')
    ap.add_argument('--clip-dir', help='CLIP checkpoint directory it runs on (its model.safetensors is hashed)')
    ap.add_argument('--clip-sha256')
    ap.add_argument('--clip-name', default=None)
    ap.add_argument('--layers', type=int, nargs='+', default=[6, 12, 18, 24])
    ap.add_argument('--image-size', type=int, default=518)
    ap.add_argument('--backbone', default='ViT-L-14-336')
    ap.add_argument('--alpha', type=float, default=None, help='fusion weight (the public test script uses 0.8)')
    ap.add_argument('--loader', choices=('auto', 'pure', 'torch'), default='auto',
                    help='auto: torch_zip.py for a zip .pth, torch.load for a legacy one; pure: torch_zip.py only; torch: torch.load')
    a = ap.parse_args()
    if not a.clip_dir and not a.clip_sha256:
        sys.exit('give --clip-dir or --clip-sha256: the checkpoint records the CLIP weights it belongs to')
    sha = a.clip_sha256 or sha256_file(os.path.join(a.clip_dir, 'model.safetensors'))
    state = load(a.pth, a.loader)
    tensors, config, n_layers = convert(state)
    if n_layers != len(a.layers):
        sys.exit(f'--layers: got {len(a.layers)} layers {a.layers}, but the checkpoint has {n_layers} Linear_l (trainable_linearlayer.fc.*)')
    config.update({'backbone': a.backbone, 'image_size': a.image_size, 'layers': a.layers})
    if a.alpha is not None:
        config['alpha'] = a.alpha
    meta = {
        'format': 'vcp-exp checkpoint v1', 'method': 'vcp-clip', 'config': config,
        'clip': {'sha256': sha, 'name': a.clip_name or a.backbone},
        'vcp_exp_version': 'converter', 'created': datetime.datetime.now(datetime.timezone.utc).isoformat(),
        'info': {'converted_from': os.path.abspath(a.pth)},
    }
    parent = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(parent, exist_ok=True)
    temp = tempfile.mkdtemp(prefix='.vcp-convert-', dir=parent)
    try:
        save_safetensors(tensors, os.path.join(temp, 'model.safetensors'), {'format': 'pt', 'method': 'vcp-clip'})
        with open(os.path.join(temp, 'config.json'), 'w') as f:
            json.dump(meta, f, indent=2)
        if os.path.exists(a.out):
            shutil.rmtree(a.out)
        os.rename(temp, a.out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    print(f'wrote {a.out}: {len(tensors)} tensors')


if __name__ == '__main__':
    main()
