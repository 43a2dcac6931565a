"""The streaming record reader: both published formats, any chunking, clear errors."""

from __future__ import annotations

import json

import pytest

from photodialog.data.download.records import RecordReader, iter_file_records, write_records
from photodialog.errors import DataError

RECORDS = [
    {"dialogue_id": i, "text": "naïve café " * i, "nested": {"list": [1, 2, {"x": "]"}]}, "s": "a,b}"}
    for i in range(7)
]


def chunked(data: bytes, size: int):
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("chunk_size", [1, 3, 17, 1 << 20])
@pytest.mark.parametrize("as_array", [True, False])
def test_reads_every_record_whatever_the_chunking(chunk_size, as_array):
    if as_array:
        data = json.dumps(RECORDS, indent=2, ensure_ascii=False).encode("utf-8")
    else:
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS).encode("utf-8")
    reader = RecordReader(chunked(data, chunk_size))
    assert list(reader) == RECORDS
    assert reader.is_array is as_array


def test_stops_reading_the_stream_when_the_caller_stops():
    data = json.dumps(RECORDS * 50).encode()
    pulled = []

    def chunks():
        for chunk in chunked(data, 100):
            pulled.append(chunk)
            yield chunk

    reader = iter(RecordReader(chunks()))
    first = [next(reader) for _ in range(2)]
    assert first == RECORDS[:2]
    assert sum(map(len, pulled)) < len(data) // 10


@pytest.mark.parametrize(
    "data, words",
    [
        (b"<!DOCTYPE html><html>rate limited</html>", "malformed JSON"),
        (json.dumps(RECORDS).encode()[:-30], "malformed JSON"),  # cut inside a record
        (json.dumps(RECORDS).encode()[:-1], "ends without ']'"),  # cut between records
        (b"[1, 2]", "not a JSON object"),
    ],
)
def test_damaged_files_raise_a_clear_data_error(data, words):
    with pytest.raises(DataError, match=words):
        list(RecordReader(chunked(data, 5), source="x.json"))


def test_empty_stream_has_no_records():
    assert list(RecordReader([b"", b"  \n"])) == []
    assert list(RecordReader([b"[]"])) == []


def test_utf8_bom_and_split_multibyte_characters(tmp_path):
    data = "\ufeff".encode() + json.dumps([{"t": "日本語"}], ensure_ascii=False).encode("utf-8")
    assert list(RecordReader(chunked(data, 1))) == [{"t": "日本語"}]


@pytest.mark.parametrize("as_array", [True, False])
def test_written_files_read_back_in_the_same_format(tmp_path, as_array):
    path = tmp_path / "x.json"
    write_records(path, RECORDS[:3], as_array)
    assert list(iter_file_records(path)) == RECORDS[:3]
    assert path.read_text().lstrip().startswith("[") is as_array
    assert not list(tmp_path.glob(".*part"))


def counting(chunks, pulled: list):
    """Yield ``chunks``, appending each one to ``pulled`` as the reader asks for it."""
    for chunk in chunks:
        pulled.append(chunk)
        yield chunk


@pytest.mark.parametrize("as_array", [True, False])
def test_a_malformed_record_fails_at_once_without_reading_the_rest(as_array):
    good = [json.dumps(r) for r in RECORDS]
    bad = '{"dialogue_id": 99, "text": oops}'
    later = good * 400  # far more than the reader may pull once it has seen the bad record
    if as_array:
        text = "[" + ",\n".join(good[:2] + [bad] + later) + "]"
    else:
        text = "\n".join(good[:2] + [bad] + later) + "\n"
    chunks = chunked(text.encode(), 64)
    pulled = []
    with pytest.raises(DataError, match=r"malformed JSON in record 3: Expecting value near .*oops"):
        list(RecordReader(counting(chunks, pulled), source="x.json"))
    read_before_the_bad_record = len(text.split("oops")[0]) // 64 + 1
    assert len(pulled) <= read_before_the_bad_record + 1  # the 16-character margin spans at most one more chunk
    assert len(pulled) < len(chunks) // 100


@pytest.mark.parametrize(
    "start, more",
    [('{"text": "a quote that never closes', b" more text" * 10), ('{"list": [1, 2, 3', b", 4" * 30)],
    ids=["string", "bracket"],
)
def test_a_record_that_never_ends_stops_at_the_size_cap(start, more):
    tail = [more] * 10_000  # far more than the cap: what the unfinished record would swallow
    pulled = []
    reader = RecordReader(counting([start.encode(), *tail], pulled), source="x.json", max_record_chars=1000)
    with pytest.raises(DataError, match="record 1 is longer than 1,000 characters"):
        list(reader)
    assert len(pulled) < 20


@pytest.mark.parametrize("cut", range(1, 40))
def test_records_cut_anywhere_by_a_chunk_boundary_still_read(cut):
    # Literals, numbers and escapes that a boundary can split mid-token, where the decoder
    # fails a few characters before the end of the buffer rather than at it.
    record = {"t": True, "f": False, "n": None, "x": -12.5e3, "u": "caf\u00e9 \U0001F600", "s": "a\\"}
    data = json.dumps(record, ensure_ascii=True).encode()
    assert list(RecordReader([data[:cut], data[cut:]])) == [record]
