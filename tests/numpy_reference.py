"""An independent NumPy implementation of the official LaBraM equations, on official-layout weights.

Written from labram_reference.md (sections 1, 4, 5), not from our Flax code: weights are PyTorch-shaped
state dicts (`qkv.weight [3d, d]`, `conv1.weight [k, 1, 1, 15]`, ...), inputs are float64.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

from labram_jax.models import official_names


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def layer_norm(x, weight, bias, eps=1e-6):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def linear(x, sd, prefix, bias=True):
    y = x @ sd[prefix + ".weight"].T
    return y + sd[prefix + ".bias"] if bias else y


def conv_rows(img, weight, bias, stride, pad):
    """PyTorch Conv2d with kernel height 1 on `(B, Cin, H, W)`: each row convolved on its own."""
    b, cin, h, w = img.shape
    cout, _, _, kw = weight.shape
    padded = np.pad(img, ((0, 0), (0, 0), (0, 0), (pad, pad)))
    wout = (w + 2 * pad - kw) // stride + 1
    out = np.zeros((b, cout, h, wout))
    for t in range(wout):
        window = padded[:, :, :, t * stride : t * stride + kw]  # (B, Cin, H, kw)
        out[:, :, :, t] = np.einsum("bchk,ock->boh", window, weight[:, :, 0, :])
    return out + bias[None, :, None, None]


def group_norm(img, weight, bias, groups=4, eps=1e-5):
    """PyTorch GroupNorm on `(B, C, H, W)`: biased statistics over each group's channels x H x W."""
    b, c, h, w = img.shape
    g = img.reshape(b, groups, c // groups, h, w)
    mean = g.mean(axis=(2, 3, 4), keepdims=True)
    var = g.var(axis=(2, 3, 4), keepdims=True)
    out = ((g - mean) / np.sqrt(var + eps)).reshape(b, c, h, w)
    return out * weight[None, :, None, None] + bias[None, :, None, None]


def temporal_conv(x, sd, prefix="patch_embed."):
    """`TemporalConv.forward`: `(B, C, A, 200)` (already divided by 100) -> `(B, C*A, 25*k)`."""
    b, c, a, p = x.shape
    img = x.reshape(b, 1, c * a, p)
    for i, (stride, pad) in enumerate(((8, 7), (1, 1), (1, 1)), start=1):
        img = conv_rows(img, sd[f"{prefix}conv{i}.weight"], sd[f"{prefix}conv{i}.bias"], stride, pad)
        img = gelu(group_norm(img, sd[f"{prefix}norm{i}.weight"], sd[f"{prefix}norm{i}.bias"]))
    # 'B C NA T -> B NA (T C)': time-major, channel-minor
    return img.transpose(0, 2, 3, 1).reshape(b, c * a, -1)


def attention(x, sd, prefix, num_heads, qkv_bias, qk_norm):
    b, n, d = x.shape
    hd = d // num_heads
    bias = None
    if qkv_bias:
        bias = np.concatenate([sd[prefix + "q_bias"], np.zeros(d), sd[prefix + "v_bias"]])
    qkv = x @ sd[prefix + "qkv.weight"].T
    if bias is not None:
        qkv = qkv + bias
    qkv = qkv.reshape(b, n, 3, num_heads, hd).transpose(2, 0, 3, 1, 4)  # (3, B, H, N, hd)
    q, k, v = qkv
    if qk_norm:
        q = layer_norm(q, sd[prefix + "q_norm.weight"], sd[prefix + "q_norm.bias"])
        k = layer_norm(k, sd[prefix + "k_norm.weight"], sd[prefix + "k_norm.bias"])
    logits = (q * hd**-0.5) @ k.transpose(0, 1, 3, 2)
    logits = logits - logits.max(-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(-1, keepdims=True)
    out = (probs @ v).transpose(0, 2, 1, 3).reshape(b, n, d)
    return linear(out, sd, prefix + "proj")


def block(x, sd, prefix, num_heads, qkv_bias, qk_norm, layer_scale):
    y = attention(
        layer_norm(x, sd[prefix + "norm1.weight"], sd[prefix + "norm1.bias"]),
        sd,
        prefix + "attn.",
        num_heads,
        qkv_bias,
        qk_norm,
    )
    if layer_scale:
        y = y * sd[prefix + "gamma_1"]
    x = x + y
    h = layer_norm(x, sd[prefix + "norm2.weight"], sd[prefix + "norm2.bias"])
    z = linear(gelu(linear(h, sd, prefix + "mlp.fc1")), sd, prefix + "mlp.fc2")
    if layer_scale:
        z = z * sd[prefix + "gamma_2"]
    return x + z


def forward_features(
    x,
    input_chans,
    sd,
    depth,
    num_heads,
    qkv_bias,
    qk_norm,
    layer_scale,
    prefix="",
    mask=None,
    cls_from_first_channel=False,
    patch_embed="temporal",
):
    """`NeuralTransformer.forward_features` up to (not including) any final norm: `(B, 1+N, d)`."""
    b, c, a = x.shape[:3]
    if patch_embed == "temporal":
        h = temporal_conv(x, sd, prefix + "patch_embed.")
    else:  # the decoder's 1x1 conv on codewords laid out (B, C, A, D)
        w = sd[prefix + "patch_embed.proj.weight"][:, :, 0, 0]
        h = x.reshape(b, c * a, -1) @ w.T + sd[prefix + "patch_embed.proj.bias"]
    if mask is not None:
        h = np.where(mask[..., None], sd[prefix + "mask_token"].reshape(1, 1, -1), h)
    d = h.shape[-1]
    cls = np.broadcast_to(sd[prefix + "cls_token"].reshape(1, 1, d), (b, 1, d))
    h = np.concatenate([cls, h], axis=1)
    pos = sd[prefix + "pos_embed"][0, input_chans]  # (C+1, d)
    expanded = np.concatenate([pos[:1], np.repeat(pos[1:], a, axis=0)], axis=0)  # cls row, then channel-major
    if cls_from_first_channel:
        expanded = np.concatenate([np.repeat(pos[1:2], 1, axis=0), expanded[1:]], axis=0)
    h = h + expanded[None]
    time = np.tile(sd[prefix + "time_embed"][0, :a], (c, 1))
    h[:, 1:] = h[:, 1:] + time[None]
    for i in range(depth):
        h = block(h, sd, f"{prefix}blocks.{i}.", num_heads, qkv_bias, qk_norm, layer_scale)
    return h


def official_state_dict(variables, names_and_shapes) -> dict[str, np.ndarray]:
    """Our variables -> an official-layout state dict (float64) through the project's name map."""
    out = {}
    for name, shape in names_and_shapes.items():
        target = official_names.translate(name)
        node = variables[target.collection]
        for key in target.path:
            node = node[key]
        out[name] = official_names.to_official(np.asarray(node, np.float64), target.kind, shape)
    return out


def backbone_keys(
    prefix,
    width,
    depth,
    num_heads,
    conv_channels,
    qkv_bias,
    qk_norm,
    layer_scale,
    max_patches=16,
    patch_embed="temporal",
    code_dim=64,
):
    """Official state-dict names and shapes of a `NeuralTransformer` body, enumerated from ref. §3.3."""
    d, k, hd = width, conv_channels, width // num_heads
    keys = {
        f"{prefix}cls_token": (1, 1, d),
        f"{prefix}pos_embed": (1, 129, d),
        f"{prefix}time_embed": (1, max_patches, d),
    }
    if patch_embed == "temporal":
        for i, (cin, kw) in enumerate(((1, 15), (k, 3), (k, 3)), start=1):
            keys.update(
                {
                    f"{prefix}patch_embed.conv{i}.weight": (k, cin, 1, kw),
                    f"{prefix}patch_embed.conv{i}.bias": (k,),
                    f"{prefix}patch_embed.norm{i}.weight": (k,),
                    f"{prefix}patch_embed.norm{i}.bias": (k,),
                }
            )
    else:
        keys.update({f"{prefix}patch_embed.proj.weight": (d, code_dim, 1, 1), f"{prefix}patch_embed.proj.bias": (d,)})
    for i in range(depth):
        p = f"{prefix}blocks.{i}."
        if layer_scale:
            keys.update({p + "gamma_1": (d,), p + "gamma_2": (d,)})
        keys.update({p + "norm1.weight": (d,), p + "norm1.bias": (d,), p + "attn.qkv.weight": (3 * d, d)})
        if qkv_bias:
            keys.update({p + "attn.q_bias": (d,), p + "attn.v_bias": (d,)})
        if qk_norm:
            keys.update(
                {
                    p + "attn.q_norm.weight": (hd,),
                    p + "attn.q_norm.bias": (hd,),
                    p + "attn.k_norm.weight": (hd,),
                    p + "attn.k_norm.bias": (hd,),
                }
            )
        keys.update(
            {
                p + "attn.proj.weight": (d, d),
                p + "attn.proj.bias": (d,),
                p + "norm2.weight": (d,),
                p + "norm2.bias": (d,),
                p + "mlp.fc1.weight": (4 * d, d),
                p + "mlp.fc1.bias": (4 * d,),
                p + "mlp.fc2.weight": (d, 4 * d),
                p + "mlp.fc2.bias": (d,),
            }
        )
    return keys
