"""Labeled files: CSV, GLUE-style TSV and JSONL read whole, and every bad file refused with
a one-line message."""

import json
import logging

import pytest

from sentiment_lstm.data.corpus import read_labeled
from sentiment_lstm.data.files import file_format, read_split
from sentiment_lstm.data.types import DataError


def write(path, content: bytes | str):
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_csv_quoted_multiline_and_long_fields_are_read_whole(tmp_path):
    long = "word " * 40_000  # over csv's 128 KB default field limit
    path = write(tmp_path / "a.csv", f'text,label\r\n"two\n\nlines, a comma",x\r\n{long},y\r\n')
    assert read_split(path, "auto", "text", "label") == (["two\n\nlines, a comma", long],
                                                         ["x", "y"])


def test_tsv_is_read_as_glue_ships_it_quotes_are_characters(tmp_path):
    path = write(tmp_path / "train.tsv", 'sentence\tlabel\n"a quote opens\t1\nplain\t0\n')
    assert read_split(path, "auto", "sentence", "label") == (['"a quote opens', "plain"],
                                                             ["1", "0"])


def test_jsonl_keeps_integer_labels_and_joins_text_columns(tmp_path):
    rows = [{"title": "T1", "body": "B1", "y": 3}, {"title": "", "body": "B2", "y": 1}]
    path = write(tmp_path / "a.jsonl", "\n".join(map(json.dumps, rows)) + "\n\n")
    assert read_split(path, "auto", ["title", "body"], "y") == (["T1\nB1", "B2"], [3, 1])
    assert file_format(tmp_path / "x.data", "jsonl") == "jsonl"


def test_empty_texts_are_dropped_with_a_warning(tmp_path, caplog):
    path = write(tmp_path / "a.csv", "text,label\nfine,x\n  ,y\n,y\n")
    with caplog.at_level(logging.WARNING):
        assert read_split(path, "csv", "text", "label") == (["fine"], ["x"])
    assert "dropped 2 of 3 rows with an empty text" in caplog.text
    with pytest.raises(DataError, match="every row's text is empty"):
        read_split(write(tmp_path / "b.csv", "text,label\n,x\n"), "csv", "text", "label")


@pytest.mark.parametrize("name, content, message", [
    ("a.csv", "review,stars\nx,1\n",
     "a.csv: row 1 has no column 'text' (columns found: 'review', 'stars')"),
    ("a.jsonl", '{"text": "x"}\n', "line 1 has no column 'label' (columns found: 'text')"),
    ("a.csv", "", "a.csv: the file is empty"),
    ("a.csv", "\n \n", "the file is empty"),
    ("a.csv", "text,label\n", "no rows (only a header?)"),
    ("a.csv", b"text,label\nok,1\nbad \xff,0\n",
     "a.csv: line 3 (byte offset 20) is not valid UTF-8"),
    ("a.csv", '{"text": "x", "label": 1}\n', "looks like JSON, not CSV; set data.format=jsonl"),
    ("a.jsonl", "text,label\nx,1\n", "does not look like JSONL: line 1 is not JSON"),
    ("a.jsonl", '{"text": "x", "label": 1}\n{"text": \n', "is not valid JSONL: line 2"),
    ("a.jsonl", '["x", 1]\n', "line 1 is a JSON list, not an object"),
    ("a.csv", "text\tlabel\nx\t1\n", "one column 'text\\tlabel'; is it TSV? set data.format=tsv"),
    ("a.tsv", "text,label\nx,1\n", "is it CSV? set data.format=csv"),
    ("a.csv", b"text,label\nx\x00y,1\n", "holds NUL bytes"),
    ("a.parquet", "x", "cannot tell the format from the extension '.parquet'"),
    ("a.csv", "text,label\nx\n", "row 1 has no 'label' value"),
    ("a.jsonl", '{"text": 5, "label": 1}\n', "line 1: the text is not a string"),
])
def test_bad_files(tmp_path, name, content, message):
    with pytest.raises(DataError) as e:
        read_split(write(tmp_path / name, content), "auto", "text", "label")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="nope.csv does not exist"):
        read_split(tmp_path / "nope.csv", "auto", "text", "label")


def test_evaluate_reads_a_file_as_training_does_and_maps_labels_to_the_runs(tmp_path):
    """A TSV quote stays a character and an empty text is dropped, as when training read the
    file; labels are the run's names in any case, or their indices."""
    path = write(tmp_path / "test.tsv", 'text\tlabel\n"Great" film\tPOS\n\tneg\nbad "one\t0\n')
    assert read_labeled(path, ["neg", "pos"]) == (['"Great" film', 'bad "one'], [1, 0])
    with pytest.raises(DataError, match=r"b.csv: unknown label 'meh' \(expected one of neg, "
                                        r"pos, 0, 1\)"):
        read_labeled(write(tmp_path / "b.csv", "text,label\nfine,pos\nhm,meh\n"), ["neg", "pos"])
    three = write(tmp_path / "c.jsonl", '{"text": "x", "label": 5}\n{"text": "y", "label": 1}\n')
    assert read_labeled(three, ["1", "5", "10"]) == (["x", "y"], [1, 0])  # integer names
