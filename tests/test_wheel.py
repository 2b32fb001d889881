"""The package works when installed as a wheel and run from any folder (configs ship inside)."""

import json
import site
import subprocess
import sys
from pathlib import Path

from helpers import ROOT

from sentiment_lstm.model import cpp_scan


def test_wheel_installs_into_fresh_venv_and_trains_from_tmp(tmp_path, tiny_tarball):
    assert cpp_scan.build_error() is None
    (built,) = cpp_scan.build_folder().glob("*.so")
    built_at = built.stat().st_mtime_ns
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                    str(ROOT)], check=True, timeout=300)
    (wheel,) = wheels.glob("sentiment_lstm-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True).stdout.strip()
    # dependencies come from this interpreter's site-packages (no network); the package itself
    # only from the wheel
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    purelib, str(wheel)], check=True, timeout=300)
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(purelib, "deps.pth").write_text("\n".join(deps) + "\n")

    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    where = subprocess.run([python, "-c", "import sentiment_lstm; print(sentiment_lstm.__file__)"],
                           cwd=workdir, capture_output=True, text=True, check=True).stdout
    assert where.startswith(purelib), where
    proc = subprocess.run(
        [python, "-m", "sentiment_lstm.train", f"data.path={tiny_tarball}",
         f"data.cache_dir={tmp_path / 'cache'}", "data.min_frequency=1", "model.hidden_size=8",
         "model.embed_dim=8", "trainer.max_epochs=1", "trainer.progress=false"],
        cwd=workdir, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "falls back" not in proc.stderr  # the C++ scan's source ships and builds
    assert built.stat().st_mtime_ns == built_at  # the same source elsewhere: the same build
    (results,) = workdir.glob("outputs/runs/*_lstm_s0/results.json")
    assert json.loads(results.read_text())["test"]["n"] == 40
