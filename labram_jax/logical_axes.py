"""Logical axis names of every parameter and key activation.

Models annotate arrays with these names only; a config maps them to mesh axes (data / fsdp / tensor) with
`flax.linen.logical_axis_rules`, so sharding never requires touching a model.
"""

# Activations.
BATCH = "batch"
TOKENS = "tokens"
# Parameters and activations.
EMBED = "embed"  # transformer width d
MLP = "mlp"  # MLP hidden 4d
HEADS = "heads"  # attention heads
HEAD_DIM = "head_dim"  # per-head width
QKV = "qkv"  # the 3 of the fused q/k/v projection
VOCAB = "vocab"  # MEM logits over the codebook
CLASSES = "classes"  # task-head outputs
SPATIAL = "spatial"  # rows of the spatial (electrode) embedding
TEMPORAL = "temporal"  # rows of the temporal embedding
CONV_WIDTH = "conv_width"  # temporal-conv kernel width
CONV_IN = "conv_in"
CONV_OUT = "conv_out"
NORM = "norm"  # GroupNorm channels
CODEBOOK = "codebook"  # codebook entries
CODE_DIM = "code_dim"  # codeword width
CODE_IN = "code_in"  # decoder input channels (= code_dim)

ALL = (
    BATCH,
    TOKENS,
    EMBED,
    MLP,
    HEADS,
    HEAD_DIM,
    QKV,
    VOCAB,
    CLASSES,
    SPATIAL,
    TEMPORAL,
    CONV_WIDTH,
    CONV_IN,
    CONV_OUT,
    NORM,
    CODEBOOK,
    CODE_DIM,
    CODE_IN,
)
