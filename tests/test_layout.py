"""The house rules, checked: imports point one way and never in a circle, files and
functions stay short, entry points are console scripts, nothing heavy runs at import, and
tracked files state results rather than tell their history."""

import ast
import re
import subprocess
import sys

import pytest
from helpers import ROOT

PACKAGE = ROOT / "src" / "sentiment_lstm"
# Library stages, earliest first: a module may import its own stage or an earlier one.
STAGES = ["io", "choices", "config", "overrides", "runtime", "data", "model", "checkpoint",
          "evaluation", "inference", "reports", "sharing", "training"]
# The modules pyproject.toml's [project.scripts] names: `sentiment-lstm-x = "module:main"`.
ENTRY_POINTS = set(re.findall(r'^sentiment-lstm-[\w-]+ = "([\w.]+):main"$',
                              (ROOT / "pyproject.toml").read_text(), re.MULTILINE))


def module_name(path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# Modules only: templates/ holds scripts the package ships as data (export's predict.py).
MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py") if "templates" not in p.parts}


def imports(name: str) -> set[str]:
    """The package's modules that `name` imports (a package's name for its __init__)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m in MODULES and m != "sentiment_lstm"}


def stage(name: str) -> int | None:
    parts = name.split(".")
    return STAGES.index(parts[1]) if len(parts) > 1 and parts[1] in STAGES else None


def test_entry_points_are_modules_with_a_main_and_a_console_script():
    assert {f"sentiment_lstm.{c}" for c in
                            ("train", "evaluate", "predict", "compare", "bench")} <= ENTRY_POINTS
    for name in ENTRY_POINTS:
        assert "def main(" in MODULES[name].read_text(), name
    top = {n for n in MODULES if n.count(".") == 1 and stage(n) is None}
    assert top - {"sentiment_lstm.__main__"} <= ENTRY_POINTS, "a top-level module is neither " \
        "an entry point nor a library stage"


@pytest.mark.parametrize("name", sorted(set(MODULES) - ENTRY_POINTS))
def test_library_imports_point_to_earlier_stages_only(name):
    for target in imports(name):
        assert target not in ENTRY_POINTS, f"{name} imports the entry point {target}"
        if stage(target) is not None and stage(name) is not None:
            assert stage(target) <= stage(name), f"{name} imports the later stage {target}"


def test_no_import_cycles():
    graph = {n: imports(n) for n in MODULES}
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for m in graph[n]:
            if state.get(m) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path + [n, m]))
            if m not in state:
                visit(m, path + [n])
        state[n] = 2

    for n in graph:
        if n not in state:
            visit(n, [])


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_files_and_functions_stay_short(path):
    source = path.read_text()
    assert source.count("\n") <= 300, f"{path.name} has {source.count(chr(10))} lines"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= 60, f"{path.name}:{node.lineno} {node.name} has {length} lines"


def test_importing_the_package_does_no_work():
    """No config registered, no plotting backend chosen, no csv limit raised on import."""
    script = (
        "import csv, importlib, sys\n"
        f"for m in {sorted(MODULES)!r}:\n"
        "    importlib.import_module(m)\n"
        "from hydra.core.config_store import ConfigStore\n"
        "assert 'schema.yaml' not in ConfigStore.instance().repo, 'schema registered'\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        "assert csv.field_size_limit() == 131072, 'csv limit changed'\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_readme_is_a_runbook():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250
    for command in ("train", "evaluate", "predict", "compare", "bench"):
        assert any(f"sentiment-lstm-{command}" in line for line in lines), command


HISTORY = re.compile(r"\bsessions? [0-9]+|\bissue #?[0-9]+|\buntil session", re.IGNORECASE)


def test_tracked_files_tell_no_development_history():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    texts = [f for f in tracked if f.endswith((".py", ".md", ".yaml", ".sh", ".toml"))]
    told = [f"{f}: {m.group(0)}" for f in texts if f != "tests/test_layout.py"
            for m in [HISTORY.search((ROOT / f).read_text())] if m]
    assert not told, told
