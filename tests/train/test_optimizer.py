"""Schedules, weight-decay groups and layer-wise lr decay against the reference's own rules (ref. §5.4, §6.4)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import base, finetune_tuev, tokenizer
from labram_jax.models import factory
from labram_jax.models.official_names import official_state_dicts, translate
from labram_jax.train import optimizer as opt
from labram_jax.train.schedules import as_optax, cosine_scheduler
from labram_jax.train.sharding import unbox


def reference_cosine_scheduler(
    base_value, final_value, epochs, niter_per_ep, warmup_epochs=0, start_warmup_value=0, warmup_steps=-1
):
    """A line-by-line transcription of the reference's `utils.cosine_scheduler`."""
    warmup_schedule = np.array([])
    warmup_iters = warmup_epochs * niter_per_ep
    if warmup_steps > 0:
        warmup_iters = warmup_steps
    if warmup_epochs > 0:
        warmup_schedule = np.linspace(start_warmup_value, base_value, warmup_iters)
    iters = np.arange(epochs * niter_per_ep - warmup_iters)
    schedule = np.array(
        [final_value + 0.5 * (base_value - final_value) * (1 + math.cos(math.pi * i / (len(iters)))) for i in iters]
    )
    schedule = np.concatenate((warmup_schedule, schedule))
    assert len(schedule) == epochs * niter_per_ep
    return schedule


@pytest.mark.parametrize(
    "args", [(5e-4, 1e-5, 50, 37, 5), (4e-4, 1e-5, 100, 11, 10), (5e-4, 1e-6, 3, 7, 0), (1e-3, 0.0, 2, 5, 1)]
)
def test_schedule_matches_utils_cosine_scheduler(args):
    ours = cosine_scheduler(*args)
    ref = reference_cosine_scheduler(*args)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=0)
    assert ours[0] == 0.0 or args[4] == 0
    table = as_optax(ours)
    np.testing.assert_allclose(
        np.asarray([table(jnp.int32(i)) for i in (0, 3, len(ours) - 1)]), ours[[0, 3, len(ours) - 1]].astype(np.float32)
    )


def test_tokenizer_lr_rescaled_by_batch():
    config = tokenizer.get_config()
    assert opt.peak_lr(config.optim) == pytest.approx(5e-5 * 1024 / 128)  # 4e-4, ref. §4.8
    assert opt.peak_lr(base.get_config().optim) == 5e-4


def _reference_no_decay(name: str, shape, skip: set[str]) -> bool:
    # optim_factory.get_parameter_groups: 1-D tensors, `.bias`, and the skip list get no weight decay.
    return len(shape) == 1 or name.endswith(".bias") or name in skip


def _reference_layer_id(name: str, depth: int) -> int:
    # optim_factory.get_num_layer_for_vit
    if name in ("cls_token", "mask_token", "pos_embed"):
        return 0
    if name.startswith("patch_embed"):
        return 0
    if name.startswith("rel_pos_bias"):
        return depth + 1
    if name.startswith("blocks"):
        return int(name.split(".")[1]) + 1
    return depth + 1


def _ours_by_official_name(model_name: str, params) -> dict[str, tuple]:
    flat = {
        tuple(getattr(k, "key", k) for k in path): leaf
        for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
    }
    out = {}
    for name, shape in official_state_dicts()[model_name]["state_dict"].items():
        target = translate(name)
        if target.collection != "params":
            continue
        out[name] = (tuple(target.path), shape, flat[tuple(target.path)])
    return out


def test_finetune_groups_match_reference_for_base():
    config = finetune_tuev.get_config("base")
    params = unbox(factory.abstract_variables(factory.classifier_model(config, 6)))["params"]
    decay = opt.decay_mask(params)
    labels, groups = opt.group_labels(params, depth=12, layer_decay=0.65)
    scales = jax.tree.map(groups.__getitem__, labels)
    decay_flat = {tuple(getattr(k, "key", k) for k in p): v for p, v in jax.tree_util.tree_flatten_with_path(decay)[0]}
    scale_flat = {tuple(getattr(k, "key", k) for k in p): v for p, v in jax.tree_util.tree_flatten_with_path(scales)[0]}
    skip = {"pos_embed", "cls_token", "time_embed"}
    checked = 0
    for name, (path, shape, _) in _ours_by_official_name("labram_base_patch200_200", params).items():
        assert decay_flat[path] == (not _reference_no_decay(name, shape, skip)), name
        expected = 0.65 ** (12 + 1 - _reference_layer_id(name, 12))
        assert scale_flat[path] == pytest.approx(expected, rel=1e-12), name
        checked += 1
    assert checked == len(decay_flat)
    # The values the reference prints for Base (ref. §6.4).
    assert scale_flat[("backbone", "pos_embed")] == pytest.approx(0.65**13)
    assert scale_flat[("backbone", "time_embed")] == 1.0
    assert scale_flat[("backbone", "blocks_0", "mlp", "fc1", "kernel")] == pytest.approx(0.65**12)
    assert scale_flat[("backbone", "blocks_11", "attn", "qkv", "kernel")] == pytest.approx(0.65)
    assert scale_flat[("head", "kernel")] == 1.0


def test_pretrain_groups_match_reference_for_base():
    config = base.get_config("base")
    params = unbox(factory.abstract_variables(factory.pretrain_model(config, 8192)))["params"]
    decay_flat = {
        tuple(getattr(k, "key", k) for k in p): v
        for p, v in jax.tree_util.tree_flatten_with_path(opt.decay_mask(params))[0]
    }
    skip = {"student.cls_token", "student.pos_embed", "student.time_embed"}
    for name, (path, shape, _) in _ours_by_official_name("labram_base_patch200_1600_8k_vocab", params).items():
        if name == "student.mask_token":  # [1, 1, d] in the reference: decayed (a vector here)
            assert decay_flat[path]
            continue
        assert decay_flat[path] == (not _reference_no_decay(name, shape, skip)), name


def test_tokenizer_groups_match_reference():
    config = tokenizer.get_config()
    params = unbox(factory.abstract_variables(factory.tokenizer_model(config)))["params"]
    decay_flat = {
        tuple(getattr(k, "key", k) for k in p): v
        for p, v in jax.tree_util.tree_flatten_with_path(opt.decay_mask(params))[0]
    }
    skip = {f"{m}.{n}" for m in ("encoder", "decoder") for n in ("cls_token", "pos_embed", "time_embed")}
    for name, (path, shape, _) in _ours_by_official_name("vqnsp_encoder_base_decoder_3x200x12", params).items():
        assert decay_flat[path] == (not _reference_no_decay(name, shape, skip)), name


def _optim(**kw) -> ml_collections.ConfigDict:
    base = dict(
        lr=1e-2,
        min_lr=1e-4,
        epochs=2,
        warmup_epochs=1,
        b1=0.9,
        b2=0.98,
        eps=1e-8,
        weight_decay=0.05,
        clip_grad_norm=0.0,
        layer_decay=1.0,
        batch_size=4,
        warmup_steps=-1,
    )
    return ml_collections.ConfigDict({**base, **kw})


def test_adamw_update_matches_torch_equations():
    """One step against torch.optim.AdamW's update written out: decay by lr*wd, bias-corrected moments."""
    rng = np.random.default_rng(0)
    params = {
        "backbone": {
            "blocks_0": {"mlp": {"fc1": {"kernel": rng.normal(size=(3, 4)), "bias": rng.normal(size=(4,))}}},
            "pos_embed": rng.normal(size=(2, 4)),
        },
        "head": {"kernel": rng.normal(size=(4, 1))},
    }
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    grads = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), params)
    optim = _optim(layer_decay=0.5)
    tx, schedule = opt.make_optimizer(optim, params, steps_per_epoch=3, depth=1)
    state = tx.init(params)
    lr_table = cosine_scheduler(optim.lr, optim.min_lr, 2, 3, 1)
    p = params
    m = jax.tree.map(jnp.zeros_like, params)
    v = jax.tree.map(jnp.zeros_like, params)
    expected = jax.tree.map(np.asarray, params)
    labels, groups = opt.group_labels(params, 1, 0.5)
    scales = jax.tree.map(groups.__getitem__, labels)
    decay = opt.decay_mask(params)
    for t in range(1, 4):
        updates, state = tx.update(grads, state, p)
        p = jax.tree.map(lambda a, u: a + u, p, updates)
        lr_t = lr_table[t - 1]

        def torch_step(w, g, mi, vi, s, d):
            lr = lr_t * s
            w = w * (1 - lr * optim.weight_decay) if d else w
            mi = optim.b1 * mi + (1 - optim.b1) * g
            vi = optim.b2 * vi + (1 - optim.b2) * g * g
            mhat, vhat = mi / (1 - optim.b1**t), vi / (1 - optim.b2**t)
            return w - lr * mhat / (np.sqrt(vhat) + optim.eps), mi, vi

        out = jax.tree.map(
            lambda w, g, mi, vi, s, d: torch_step(
                np.asarray(w, np.float64), np.asarray(g), np.asarray(mi), np.asarray(vi), s, d
            ),
            expected,
            grads,
            m,
            v,
            scales,
            decay,
        )
        expected = jax.tree.map(lambda o: o[0], out, is_leaf=lambda x: isinstance(x, tuple))
        m = jax.tree.map(lambda o: o[1], out, is_leaf=lambda x: isinstance(x, tuple))
        v = jax.tree.map(lambda o: o[2], out, is_leaf=lambda x: isinstance(x, tuple))
        for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(expected)):
            np.testing.assert_allclose(np.asarray(a), b, rtol=2e-5, atol=2e-6)
    assert float(schedule(jnp.int32(0))) == 0.0


def test_unused_pretraining_heads_are_never_updated():
    params = {
        "student": {"lm_head": {"kernel": jnp.ones((2, 3))}, "mask_token": jnp.ones((2,))},
        "projection_head": {"kernel": jnp.ones((2, 2))},
        "lm_head": {"kernel": jnp.ones((2, 3))},
    }
    tx, _ = opt.make_optimizer(_optim(warmup_epochs=0), params, steps_per_epoch=2)
    state = tx.init(params)
    updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
    assert not np.any(np.asarray(updates["student"]["lm_head"]["kernel"]))
    assert not np.any(np.asarray(updates["projection_head"]["kernel"]))
    assert np.all(np.asarray(updates["lm_head"]["kernel"]) != 0)
    assert np.all(np.asarray(updates["student"]["mask_token"]) != 0)


def test_gradient_clipping_by_global_norm():
    """With `clip_grad_norm`, the chain sees gradients rescaled to the max norm when their global norm exceeds
    it (ref. §5.4): identical to the unclipped optimiser fed pre-clipped gradients."""
    import optax

    params = {"a": {"kernel": jnp.ones((2, 2))}, "b": {"bias": jnp.ones((3,))}}
    clipped_tx, _ = opt.make_optimizer(_optim(clip_grad_norm=1.0, warmup_epochs=0), params, 2)
    plain_tx, _ = opt.make_optimizer(_optim(clip_grad_norm=0.0, warmup_epochs=0), params, 2)
    steps = [
        jax.tree.map(lambda x: jnp.full_like(x, 30.0), params),
        jax.tree.map(lambda x: jnp.full_like(x, 0.01), params),
    ]
    s1, s2 = clipped_tx.init(params), plain_tx.init(params)
    for g in steps:
        norm = float(optax.tree.norm(g))
        pre = jax.tree.map(lambda x: x * min(1.0, 1.0 / norm), g)
        u1, s1 = clipped_tx.update(g, s1, params)
        u2, s2 = plain_tx.update(pre, s2, params)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5)
    # ... and differs from the unclipped optimiser on the raw gradients.
    s3 = plain_tx.init(params)
    for g in steps:
        u3, s3 = plain_tx.update(g, s3, params)
    assert not np.allclose(np.asarray(u3["a"]["kernel"]), np.asarray(u1["a"]["kernel"]))
