"""`python -m labram_jax.convert --checkpoint PATH.pth --out DIR [--kind ...] [--allow_missing P ...]
[--allow_unexpected P ...]`: an official PyTorch checkpoint -> a labram_jax checkpoint + conversion.json."""

from __future__ import annotations

import argparse
import os
import sys

from labram_jax.convert import CONVERSION_FILE, ConversionError, convert


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m labram_jax.convert",
        description="Convert an official LaBraM PyTorch checkpoint (.pth read with torch.load(weights_only=True), "
        "or .safetensors), or a braindecode Labram state dict (told apart by its tensor names), into a labram_jax "
        "checkpoint directory that labram_jax.load, fine-tuning and pre-training restore.",
    )
    parser.add_argument("--checkpoint", required=True, help="the file: .pth/.pt/.bin or .safetensors")
    parser.add_argument("--out", required=True, help="a new (or empty) directory for the converted checkpoint")
    parser.add_argument(
        "--kind",
        default="auto",
        choices=("auto", "pretrain", "finetune", "tokenizer"),
        help="what the file must hold; auto infers it from the tensor names (default)",
    )
    parser.add_argument(
        "--allow_missing",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="tensor names (shell-style patterns; official names, or a braindecode file's own) the file may lack "
        "or hold mis-shaped; their variables are initialised fresh (a missing head.* leaves no head)",
    )
    parser.add_argument(
        "--allow_unexpected",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="tensor names (shell-style patterns; official names, or a braindecode file's own) of file tensors "
        "to drop, e.g. 'head.*'",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        report = convert(args.checkpoint, args.out, args.kind, args.allow_missing, args.allow_unexpected)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    arch = report["architecture"]
    counts = report["counts"]
    head = ""
    if report["kind"] == "finetune":
        head = f", {arch['num_outputs']}-output head" if arch["num_outputs"] else ", no task head"
    if report["source"]["layout"] != "official":
        head += f", from the {report['source']['layout']} Labram layout"
    print(
        f"converted {report['source']['file']}\n"
        f"  kind {report['kind']} ({arch['official_model']}{head}), {report['parameters']:,} parameters "
        f"(official architecture: {report['official_parameters']:,})\n"
        f"  {counts['mapped']} of {counts['file_tensors']} tensors mapped, {counts['let_go']} let go, "
        f"{counts['initialised']} variables initialised fresh\n"
        f"  checkpoint: {report['checkpoint']}\n"
        f"  summary:    {os.path.join(args.out, CONVERSION_FILE)}"
    )
    for pattern in report["unused_patterns"]:
        print(f"  note: pattern {pattern!r} matched nothing", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
