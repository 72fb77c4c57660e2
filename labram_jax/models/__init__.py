"""Flax Linen modules of LaBraM: temporal encoder, transformer, neural Transformer heads, VQ-NSP tokenizer."""
