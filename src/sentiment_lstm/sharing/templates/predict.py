# python predict.py <export dir> "A quiet, moving film." "Dull."  (onnxruntime + tokenizers)
import json, pathlib, sys  # noqa: E401, I001
import numpy as np, onnxruntime as ort  # noqa: E401
from tokenizers import Tokenizer
d, texts = pathlib.Path(sys.argv[1]), sys.argv[2:]
cfg, tok = json.loads((d / "config.json").read_text()), Tokenizer.from_file(f"{d}/tokenizer.json")
model = ort.InferenceSession(f"{d}/model.onnx")
ids = [e.ids[:cfg["max_len"]] or [0] for e in tok.encode_batch(texts)]  # truncate=head
tokens = np.zeros((len(ids), max(map(len, ids))), np.int64)  # (B, T), 0-padded
for i, row in enumerate(ids): tokens[i, :len(row)] = row  # noqa: E701
probs = model.run(None, {"tokens": tokens, "lengths": np.array([len(r) for r in ids], np.int64)})[0]
print(json.dumps([dict(zip(cfg["labels"], p.round(6).tolist())) for p in probs]))
