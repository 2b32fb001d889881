"""torchrun ... tests/ddp_fit.py OUT [overrides]: fit() on every rank; each rank writes its own
results to OUT/rank<r>.json, so a test can compare what the ranks computed."""

import json
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

import sentiment_lstm
from sentiment_lstm import distributed
from sentiment_lstm.train import fit

out = Path(sys.argv[1])
rank = distributed.init()
with initialize_config_dir(str(Path(sentiment_lstm.__file__).parent / "configs"),
                           version_base="1.3"):
    cfg = compose("config", overrides=sys.argv[2:])
results = fit(cfg, out / "run")
(out / f"rank{rank}.json").write_text(json.dumps(results))
distributed.finish(0)
