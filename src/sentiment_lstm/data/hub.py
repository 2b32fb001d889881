"""Any Hugging Face dataset with a text and a label column: a hub name (with its config), a
local dataset folder, or a packaged builder (parquet, csv, json) over local data_files.

With no network the hub is put offline before `datasets` is imported, so a cached dataset
still loads and a missing one fails at once instead of after ~25 s of retries.
"""

import os
from pathlib import Path

from sentiment_lstm.data.files import text_columns
from sentiment_lstm.data.types import DataError, RawTexts
from sentiment_lstm.io import first_line

BUILDERS = ("parquet", "csv", "json", "arrow", "text")
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def is_local(name: str, data_files) -> bool:
    return bool(data_files) or name in BUILDERS or Path(name).expanduser().exists()


def _go_offline_without_network(name: str, data_files, resolves) -> None:
    if is_local(name, data_files) or any(os.environ.get(v, "0") not in ("", "0")
                                         for v in OFFLINE_VARS):
        return
    if not resolves("https://huggingface.co"):
        for v in OFFLINE_VARS:
            os.environ[v] = "1"


def read(spec: dict, resolves) -> tuple[dict[str, RawTexts], list[str] | None]:
    """{"train": ..., "validation"?: ..., "test"?: ...} as (texts, raw labels), and the label
    names when the label column is a ClassLabel (their order is the dataset's)."""
    _go_offline_without_network(spec["name"], spec["data_files"], resolves)
    import datasets  # heavy import, only for this source

    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    name = spec["name"]
    kwargs = {"data_files": spec["data_files"]} if spec["data_files"] else {}
    try:
        ds = datasets.load_dataset(str(Path(name).expanduser()) if Path(name).expanduser()
                                   .exists() else name, spec["config"], **kwargs)
    except Exception as e:  # datasets raises many types for "not reachable / not found"
        raise DataError(f"could not load dataset {name!r}: {first_line(e)}") from e
    cols = text_columns(spec["text_column"])
    label_col = spec["label_column"]
    out, declared = {}, None
    for split, wanted in spec["splits"].items():
        if wanted is None:
            continue
        if wanted not in ds:
            raise DataError(f"dataset {name!r} has no split {wanted!r} (splits: "
                            f"{', '.join(ds)}); set data.splits.{split}=...")
        part = ds[wanted]
        missing = [c for c in [*cols, label_col] if c not in part.column_names]
        if missing:
            raise DataError(f"dataset {name!r} split {wanted!r} has no column {missing[0]!r} "
                            f"(columns found: {', '.join(part.column_names)}); set "
                            "data.text_column / data.label_column")
        feature = part.features[label_col]
        labels = list(part[label_col])
        if isinstance(feature, datasets.ClassLabel):
            declared = list(feature.names)
            labels = [feature.names[y] if 0 <= y < len(feature.names) else y for y in labels]
        columns = [part[c] for c in cols]
        texts = ["\n".join(p for p in parts if p) for parts in zip(*columns)]
        keep = [i for i, t in enumerate(texts) if t.strip()]
        out[split] = ([texts[i] for i in keep], [labels[i] for i in keep])
    return out, declared
