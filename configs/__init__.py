"""Run recipes: one `get_config()` file per run, built from the helpers in `configs/common.py`.

Config files import `configs.common`, so commands run from the repository root (or with it on
PYTHONPATH), as every command in the docs does.
"""
