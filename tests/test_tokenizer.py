import logging

import pytest
import torch
from omegaconf import OmegaConf

from sentiment_lstm.config import DataConfig
from sentiment_lstm.data import sources, tokenizer


def test_normalization_strips_markup_and_lowercases():
    tok = tokenizer.build_tokenizer(["Great movie.<br /><br />GREAT acting!"] * 3, min_frequency=1)
    tokens = tok.encode("Great<br />movie<br/>").tokens
    assert tokens == ["great", "movie"]
    assert tok.token_to_id(tokenizer.PAD) == 0 and tok.token_to_id(tokenizer.UNK) == 1
    assert tok.encode("zyzzyva").ids == [1]


def test_vocab_size_and_min_frequency_are_honoured():
    texts = ["a a a b b c"] * 2
    assert tok_vocab(texts, vocab_size=100, min_frequency=3) == {"[PAD]", "[UNK]", "a", "b"}
    assert tok_vocab(texts, vocab_size=3, min_frequency=1) == {"[PAD]", "[UNK]", "a"}


def tok_vocab(texts, **kw) -> set[str]:
    return set(tokenizer.build_tokenizer(texts, **kw).get_vocab())


def test_bpe_tokenizer_round_trips_through_json():
    tok = tokenizer.build_tokenizer(["the movie was wonderful"] * 5, model="bpe", vocab_size=40,
                                    min_frequency=1)
    again = tokenizer.Tokenizer.from_str(tok.to_str())
    assert again.encode("wonderful movie").ids == tok.encode("wonderful movie").ids


def test_encode_packs_reviews_back_to_back():
    tok = tokenizer.build_tokenizer(["good bad film"], min_frequency=1)
    split = tokenizer.encode(tok, ["good film", "", "bad bad bad"], [1, 0, 0])
    assert split.lengths.tolist() == [2, 0, 3]
    assert split.ids[split.offsets[2]:split.offsets[3]].tolist() == [tok.token_to_id("bad")] * 3
    assert split.labels.tolist() == [1, 0, 0]


def test_prepare_caches_encoded_splits(tiny_tarball, tmp_path, monkeypatch):
    cfg = OmegaConf.merge(OmegaConf.structured(DataConfig), {
        "path": str(tiny_tarball), "cache_dir": str(tmp_path / "cache"), "min_frequency": 1})
    tok, splits, _ = tokenizer.prepare(cfg)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [36, 4, 40]
    # the tokenizer saw the training split only: a word only in val/test is unknown
    assert len(list((tmp_path / "cache").glob("encoded-*.pt"))) == 1

    def no_reading(*args, **kwargs):
        raise AssertionError("a cache hit must not read the data again")

    monkeypatch.setattr(sources, "read", no_reading)
    tok2, splits2, _ = tokenizer.prepare(cfg)
    assert tok2.to_str() == tok.to_str()
    for name in splits:
        assert torch.equal(splits2[name].ids, splits[name].ids)
    with pytest.raises(AssertionError, match="cache hit"):  # other settings, other key
        tokenizer.prepare(OmegaConf.merge(cfg, {"vocab_size": 50}))


@pytest.mark.parametrize("damage, reason", [
    (lambda path: path.write_bytes(path.read_bytes()[:1000]), "central directory"),
    (lambda path: tokenizer.atomic_save({"splits": {}}, path), "KeyError: 'tokenizer'"),
])
def test_an_unreadable_cache_is_rebuilt_and_the_log_says_why(tiny_tarball, tmp_path, caplog,
                                                              damage, reason):
    cfg = OmegaConf.merge(OmegaConf.structured(DataConfig), {
        "path": str(tiny_tarball), "cache_dir": str(tmp_path / "cache"), "min_frequency": 1})
    _, splits, _ = tokenizer.prepare(cfg)
    (path,) = (tmp_path / "cache").glob("encoded-*.pt")
    damage(path)
    with caplog.at_level(logging.WARNING, logger=tokenizer.__name__):
        _, rebuilt, _ = tokenizer.prepare(cfg)
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    message = record.getMessage()
    assert message.startswith(f"rebuilding the encoded-split cache {path}: unreadable (")
    assert reason in message and "\n" not in message
    assert torch.equal(rebuilt["train"].ids, splits["train"].ids)
    assert torch.load(path, weights_only=True)["tokenizer"]  # the cache is whole again
