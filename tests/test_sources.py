import bz2
import functools
import gzip
import http.server
import random
import threading
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sentiment_lstm.config import DataConfig
from sentiment_lstm.data import sources


def data_cfg(tmp_path: Path, **kw):
    return OmegaConf.merge(OmegaConf.structured(DataConfig),
                           {"cache_dir": str(tmp_path / "cache"), **kw})


def test_reads_tarball_in_place(tiny_tarball):
    splits = sources.read(sources.locate(data_cfg(tiny_tarball.parent, path=str(tiny_tarball))))
    for split in ("train", "test"):
        texts, labels = splits[split]
        assert len(texts) == 40 and labels.count(1) == 20
        assert all(isinstance(t, str) and t for t in texts)


def test_reads_extracted_folder_the_same(tiny_tarball, tmp_path):
    import tarfile

    with tarfile.open(tiny_tarball) as tf:
        tf.extractall(tmp_path / "x", filter="data")
    from_tar = sources.read(sources.locate(data_cfg(tmp_path, path=str(tiny_tarball))))
    for path in (tmp_path / "x", tmp_path / "x" / "aclImdb"):
        assert sources.read(sources.locate(data_cfg(tmp_path, path=str(path)))) == from_tar
    renamed = (tmp_path / "x" / "aclImdb").rename(tmp_path / "my_imdb")
    assert sources.read(sources.locate(data_cfg(tmp_path, path=str(renamed)))) == from_tar


def test_missing_and_corrupt_paths_raise_data_error(tmp_path):
    with pytest.raises(sources.DataError, match="does not exist"):
        sources.locate(data_cfg(tmp_path, path=str(tmp_path / "nope.tar.gz")))
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08 this is not gzip")
    with pytest.raises(sources.DataError, match="not a readable aclImdb tarball: corrupt gzip"):
        sources.read(sources.locate(data_cfg(tmp_path, path=str(bad))))
    (tmp_path / "empty").mkdir()
    with pytest.raises(sources.DataError, match="not an aclImdb folder: it has no train/, test/$"):
        sources.locate(data_cfg(tmp_path, path=str(tmp_path / "empty")))
    (tmp_path / "half" / "aclImdb" / "test" / "pos").mkdir(parents=True)
    with pytest.raises(sources.DataError, match="it has no train/, test/neg$"):
        sources.locate(data_cfg(tmp_path, path=str(tmp_path / "half")))


def _unreadable(tiny_tarball: Path, case: str) -> bytes:
    whole = tiny_tarball.read_bytes()
    plain = gzip.decompress(whole)
    return {"random": random.Random(0).randbytes(4000), "empty": b"",
            "truncated_gzip": whole[:len(whole) // 2], "truncated_tar": plain[:len(plain) // 2],
            "gzip_not_tar": gzip.compress(b"just text " * 100),
            "bzip2_not_tar": bz2.compress(b"just text " * 100)}[case]


@pytest.mark.parametrize("case, reason", [
    ("random", "not a tar archive, nor gzip, bzip2 or xz compressed"),
    ("empty", "the file is empty"),
    ("truncated_gzip", "truncated: the gzip data ends early"),
    ("truncated_tar", "truncated: the tar data ends early"),
    ("gzip_not_tar", "gzip compressed, but not a tar archive inside"),
    ("bzip2_not_tar", "bzip2 compressed, but not a tar archive inside"),
])
def test_an_unreadable_tarball_gets_one_reason(tiny_tarball, tmp_path, case, reason):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(_unreadable(tiny_tarball, case))
    with pytest.raises(sources.DataError) as e:
        sources.read(sources.locate(data_cfg(tmp_path, path=str(bad))))
    assert str(e.value) == f"{bad} is not a readable aclImdb tarball: {reason}"


def test_environment_variable_names_the_data(tiny_tarball, tmp_path, monkeypatch):
    monkeypatch.setenv(sources.ENV_PATH, str(tiny_tarball))
    assert sources.locate(data_cfg(tmp_path)).location == str(tiny_tarball)


def test_auto_offline_without_local_copy_says_how_to_supply_data(tmp_path, monkeypatch):
    monkeypatch.delenv(sources.ENV_PATH, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(sources.DataError, match="data.path="):
        sources.locate(data_cfg(tmp_path))


def test_stratified_split_is_seeded_and_balanced():
    labels = [0] * 100 + [1] * 300
    kept, held = sources.stratified_split(labels, 0.1, seed=3)
    assert len(held) == 40 and sum(labels[i] for i in held) == 30
    assert sorted(kept + held) == list(range(400))
    assert sources.stratified_split(labels, 0.1, seed=3) == (kept, held)
    assert sources.stratified_split(labels, 0.1, seed=4) != (kept, held)


def test_load_splits_carves_val_from_train_and_limits(tiny_tarball, tmp_path):
    source = sources.locate(data_cfg(tmp_path, path=str(tiny_tarball)))
    splits = sources.load_splits(source, val_fraction=0.25, split_seed=0)
    assert [len(splits[s][0]) for s in ("train", "val", "test")] == [30, 10, 40]
    assert not set(splits["train"][0]) & set(splits["val"][0])
    small = sources.load_splits(source, val_fraction=0.25, split_seed=0, limit=8)
    assert [len(small[s][1]) for s in ("train", "val", "test")] == [8, 8, 8]
    assert sum(small["test"][1]) == 4


def test_hub_source_reads_a_local_parquet_stand_in(tiny_tarball, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    expected = sources.read(sources.locate(data_cfg(tmp_path, path=str(tiny_tarball))))
    hub_dir = tmp_path / "hub" / "data"
    hub_dir.mkdir(parents=True)
    for split, (texts, labels) in expected.items():
        pq.write_table(pa.table({"text": texts, "label": labels}),
                       hub_dir / f"{split}-00000-of-00001.parquet")
    source = sources.locate(data_cfg(tmp_path, source="hub", hub_name=str(hub_dir.parent)))
    assert source.kind == "hub"
    got = sources.read(source)
    for split in ("train", "test"):
        assert sorted(zip(*got[split])) == sorted(zip(*expected[split]))


@pytest.fixture
def http_server(tmp_path):
    """Serves tmp_path/www on 127.0.0.1: a stand-in for the official download site."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_source_fetches_and_reads_the_tarball(tiny_tarball, tmp_path, http_server):
    www, base = http_server
    (www / "aclImdb_v1.tar.gz").write_bytes(tiny_tarball.read_bytes())
    cfg = data_cfg(tmp_path, source="download", url=f"{base}/aclImdb_v1.tar.gz")
    source = sources.locate(cfg)
    assert Path(source.location) == tmp_path / "cache" / "aclImdb_v1.tar.gz"
    assert len(sources.read(source)["train"][0]) == 40
    # auto finds the earlier download before trying any network source
    auto = sources.locate(data_cfg(tmp_path, url=f"{base}/aclImdb_v1.tar.gz"))
    assert auto.location == source.location


def test_failed_download_leaves_nothing_behind(tmp_path, http_server):
    _, base = http_server
    cfg = data_cfg(tmp_path, source="download", url=f"{base}/missing.tar.gz")
    with pytest.raises(sources.DataError, match="could not download"):
        sources.locate(cfg)
    assert not list((tmp_path / "cache").glob("*"))
