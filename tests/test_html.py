"""The explain page in a real headless Chromium: it renders with no console errors, shows every
token, and stays under 1 MB for a 1,000-token review. CI must install Chromium
(`apt-get install -y chromium`): without it these tests fail, they do not skip."""

import html
import re
import shutil
import subprocess
import tempfile

import pytest
from helpers import make_checkpoint

from sentiment_lstm.evaluation.explain import explain
from sentiment_lstm.inference import load_classifier
from sentiment_lstm.reports.html import page

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def chromium(url: str, *args: str) -> subprocess.CompletedProcess:
    exe = next((p for p in map(shutil.which, CHROMIUM) if p), None)
    assert exe, "headless Chromium is needed: apt-get install -y chromium"
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                               "--disable-quic", "--no-first-run",
                               "--disable-background-networking", "--disable-component-update",
                               "--disable-sync", f"--user-data-dir={profile}",
                               "--enable-logging=stderr", "--v=0", *args, url],
                              capture_output=True, text=True, timeout=120)


def console_errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "CONSOLE" in ln and
            re.search(r"Uncaught|Error|ERROR:CONSOLE", ln)]


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("models")
    lstm = load_classifier(make_checkpoint(tmp / "l.ckpt", bidirectional=True, max_len=1000))
    rnn = load_classifier(make_checkpoint(tmp / "r.ckpt", "rnn", bidirectional=True))
    return explain(lstm, ["I....I....I...I..I like this movie & <b>this</b>",
                          "film " * 1000], compare=rnn)


def test_page_renders_every_token_without_console_errors(rows, tmp_path):
    path = tmp_path / "p.html"
    path.write_text(page(rows))
    dom = chromium(path.as_uri(), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not console_errors(dom.stderr), console_errors(dom.stderr)
    canvases = dom.stdout.count('<canvas class="trk"')
    assert f'data-drawn="{canvases}"' in dom.stdout and canvases == 1 + 1000 // 20  # JS ran
    shown = [html.unescape(t) for t in re.findall(r'<span class="tok"[^>]*>(.*?)</span>',
                                                  dom.stdout)]
    assert shown == rows[0]["tokens"] + rows[1]["tokens"]
    assert "&lt;" in dom.stdout and "<b>this</b>" not in dom.stdout  # the text is escaped
    assert "http://" not in path.read_text() and "https://" not in path.read_text()
    shot = tmp_path / "shot.png"
    run = chromium(path.as_uri(), f"--screenshot={shot}", "--window-size=1400,900")
    assert run.returncode == 0 and shot.stat().st_size > 10_000


def test_console_errors_are_caught(tmp_path):
    path = tmp_path / "bad.html"
    path.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    assert console_errors(chromium(path.as_uri(), "--dump-dom").stderr)


def test_page_for_a_1000_token_review_is_under_1_mb(rows):
    size = len(page(rows[1:]).encode())
    assert 100_000 < size < 1_000_000, size

