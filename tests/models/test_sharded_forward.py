"""The logical axis names are enough to shard the models: 8 fake CPU devices, no model change."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import dataclasses
    import flax.linen as nn
    import jax
    import numpy as np
    from jax.sharding import AxisType, NamedSharding
    from labram_jax.models.neural_transformer import LaBraMPretrain
    from tests import tiny

    assert jax.device_count() == 8
    mesh = jax.make_mesh((2, 2, 2), ("data", "fsdp", "tensor"), axis_types=(AxisType.Auto,) * 3)
    rules = (("batch", "data"), ("embed", "fsdp"), ("heads", "tensor"), ("mlp", "tensor"),
             ("vocab", "tensor"), ("tokens", None))
    spec = dataclasses.replace(tiny.BACKBONE, init_style="pretrain", cls_spatial_from_first_channel=True)
    model = LaBraMPretrain(spec, vocab_size=16)
    batch = tiny.batch(np.random.default_rng(0), b=4, c=2, a=3)
    masked = np.zeros((4, 6), bool); masked[:, ::2] = True
    init = lambda rng: model.init(rng, *tiny.args(batch), masked)
    abstract = jax.eval_shape(init, jax.random.PRNGKey(0))
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        shardings = nn.logical_to_mesh_sharding(nn.get_partition_spec(abstract), mesh, rules)
        variables = jax.jit(init, out_shardings=shardings)(jax.random.PRNGKey(0))
        kernel = nn.meta.unbox(variables)["params"]["student"]["backbone"]["blocks_0"]["mlp"]["fc1"]["kernel"]
        assert kernel.sharding.spec == jax.sharding.PartitionSpec("fsdp", "tensor"), kernel.sharding
        data = NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
        args = [jax.device_put(a, data) for a in (*tiny.args(batch), masked)]
        sharded = jax.jit(lambda v, *a: model.apply(v, *a))(variables, *args)
    local = model.apply(jax.device_get(nn.meta.unbox(variables)), *tiny.args(batch), masked)
    np.testing.assert_allclose(np.asarray(sharded), np.asarray(local), rtol=2e-4, atol=2e-4)
    print("SHARDED_OK")
""")


def test_pretrain_model_shards_over_data_fsdp_tensor():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "SHARDED_OK" in result.stdout
