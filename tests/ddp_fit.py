"""torchrun ... tests/ddp_fit.py OUT [overrides]: fit() on every rank; each rank writes its own
results to OUT/rank<r>.json, so a test can compare what the ranks computed."""

import json
import sys
from pathlib import Path

from helpers import compose_config

from sentiment_lstm.runtime import distributed
from sentiment_lstm.training.trainer import fit

out = Path(sys.argv[1])
rank = distributed.init()
cfg = compose_config(*sys.argv[2:])
results = fit(cfg, out / "run")
(out / f"rank{rank}.json").write_text(json.dumps(results))
distributed.finish(0)
