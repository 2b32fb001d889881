"""Export a checkpoint for serving (ONNX) or for sharing (a Hugging Face Hub folder).

    python -m sentiment_lstm.export --checkpoint outputs/runs/<run> --format onnx --out served/
    python -m sentiment_lstm.export --checkpoint outputs/runs/<run> --format hf --out shared/
    python -m sentiment_lstm.export ... --format hf --out shared/ --push-to-hub user/imdb-lstm

onnx: model.onnx (tokens (B, T) int64, lengths (B,) int64 -> probabilities (B, C)),
tokenizer.json, config.json (labels, max_len, truncate) and predict.py (onnxruntime).
hf: model.safetensors, config.json, tokenizer.json and a model card README.md with the run's
per-length test table; sentiment_lstm.sharing.hub.load_hub_classifier(folder) loads it.
"""

import argparse
import json
import sys
from pathlib import Path

from sentiment_lstm.checkpoint import CheckpointError, load_bundle
from sentiment_lstm.io import first_line

FORMATS = ("onnx", "hf")


class ExportError(ValueError):
    pass


def _out_dir(path: str, force: bool) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(f"--out {out} exists and is not empty (--force writes into it)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _results(checkpoint: str) -> dict | None:
    """The run's results.json, beside the checkpoint (or in the run directory given)."""
    path = Path(checkpoint)
    path = (path if path.is_dir() else path.parent) / "results.json"
    return json.loads(path.read_text()) if path.is_file() else None


def export(checkpoint: str, fmt: str, out: str, force: bool = False,
           push_to_hub: str | None = None) -> Path:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; one of: {', '.join(FORMATS)}")
    if push_to_hub and fmt != "hf":
        raise ExportError("--push-to-hub needs --format hf")
    bundle = load_bundle(checkpoint)
    folder = _out_dir(out, force)
    if fmt == "onnx":
        from sentiment_lstm.sharing.onnx_export import export_onnx  # onnx: the test extra

        export_onnx(bundle, folder)
    else:
        from sentiment_lstm.sharing.hub import push_folder, save_hub_folder

        save_hub_folder(bundle, folder, _results(checkpoint))
        if push_to_hub:
            print(f"pushed to {push_folder(folder, push_to_hub)}", file=sys.stderr)
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sentiment_lstm.export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
    ap.add_argument("--format", default="onnx", help="onnx (serving) or hf (Hub folder)")
    ap.add_argument("--out", required=True, help="the folder to write (new or empty)")
    ap.add_argument("--force", action="store_true", help="write into a non-empty --out")
    ap.add_argument("--push-to-hub", metavar="REPO_ID", help="hf: upload the folder too")
    args = ap.parse_args(argv)
    try:
        folder = export(args.checkpoint, args.format, args.out, args.force, args.push_to_hub)
    except (CheckpointError, ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # the Hub client's network and auth errors, one line each
        if not args.push_to_hub:
            raise
        print(f"error: --push-to-hub {args.push_to_hub}: {type(e).__name__}: "
              f"{first_line(e)}", file=sys.stderr)
        return 2
    print(f"wrote {args.format} export to {folder}: "
          f"{', '.join(sorted(p.name for p in folder.iterdir()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
