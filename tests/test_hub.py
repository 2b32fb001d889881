"""data=hub on a local parquet stand-in (never the network), and an offline hub name that
fails at once."""

import json
import os
import subprocess
import sys
import time

from helpers import TINY, make_topic_rows


def hub_cli(tmp_path, *overrides: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sentiment_lstm.train", "data=hub", *TINY,
         "trainer.max_epochs=1", f"data.cache_dir={tmp_path / 'cache'}",
         f"hydra.run.dir={tmp_path / 'run'}", *overrides], cwd=tmp_path, capture_output=True,
        text=True, timeout=300, env={**os.environ, "HF_HOME": str(tmp_path / "hf"), **env})


def parquet(path, rows, names):
    import datasets

    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=names)})
    datasets.Dataset.from_dict({"sentence": [t for t, _ in rows],
                                "label": [names.index(y) for _, y in rows]},
                               features=features).to_parquet(str(path))
    return path


def test_a_parquet_stand_in_trains_with_its_classlabel_names(tmp_path):
    names = ["tech", "sport", "food"]  # the dataset's order, not sorted
    train = parquet(tmp_path / "train.parquet", make_topic_rows(30, classes=3), names)
    test = parquet(tmp_path / "test.parquet", make_topic_rows(5, classes=3, seed=1), names)
    proc = hub_cli(tmp_path, "data.name=parquet", "data.text_column=sentence",
                   f"data.data_files={{train:{train},test:{test}}}", "data.splits.test=test")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["labels"] == names and results["test"]["n"] == 15
    assert set(results["test"]["per_class"]) == set(names)


def test_offline_a_missing_hub_dataset_fails_at_once(tmp_path):
    start = time.perf_counter()
    proc = hub_cli(tmp_path, "data.name=nobody/no-such-dataset", HF_HUB_OFFLINE="1")
    assert proc.returncode == 2 and time.perf_counter() - start < 60
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "could not load dataset 'nobody/no-such-dataset'" in errors[0]
    assert "Traceback" not in proc.stderr


def test_hub_without_a_name_is_a_config_error(tmp_path):
    proc = hub_cli(tmp_path)
    assert proc.returncode == 2 and "error: data=hub needs data.name=DATASET" in proc.stderr
