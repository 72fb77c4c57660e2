"""Planning a run before paying for it: compile the real train and eval steps ahead of time for a target
(a TPU slice with no TPU attached, N fake CPU devices, or the devices this process sees) and read what XLA
reports. `python -m labram_jax.plan` is the command; docs/scale-out.md the manual.

- `targets`: slice names -> compile-only devices, device memory and the roofline table;
- `program`: the abstract train state, batch and frozen inputs of a config on a mesh, lowered and compiled;
- `collectives`: the collectives of an optimised HLO module (kind, count, bytes);
- `levers`: the changes that shrink a plan that does not fit, tried smallest first;
- `report`: the plan as one JSON-able object, and as text.
"""
