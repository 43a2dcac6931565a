"""Read dialogue records one by one from a JSON array or a JSON-lines stream.

DialogCC's ``train.json`` is about 300 MB; parsed whole it would take several GB of Python
objects. Both published formats are handled by the same loop: skip whitespace and the commas
between array items, decode one value with ``raw_decode``, repeat. The buffer only ever holds
the record being read, so memory stays at the size of one record plus one chunk.

That holds for damaged files too: a decode error far from the end of the buffer cannot be a
record cut by a chunk boundary, so it is reported at once instead of reading (and re-copying)
the rest of the stream, and a record that grows past ``MAX_RECORD_CHARS`` (a missing closing
quote or brace swallowing everything after it) is reported as such.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from photodialog.errors import DataError

CHUNK_BYTES = 1 << 20
# Published records are a few kB; 32 M characters is far above any real one and far below
# what would exhaust memory (a str of this size takes at most 128 MB).
MAX_RECORD_CHARS = 32 << 20
# A value cut by a chunk boundary makes the decoder fail within the last few characters of the
# buffer: the longest token it can be stuck in is "-Infinity" (9) or a "\uXXXX" escape (6).
_TRUNCATION_MARGIN = 16
_SEPARATORS = " \t\r\n,"


class RecordReader:
    """Iterates over the records of byte chunks; ``is_array`` says which format it saw."""

    def __init__(self, chunks: Iterable[bytes], source: str = "<stream>", max_record_chars: int = MAX_RECORD_CHARS):
        self._chunks = iter(chunks)
        self._source = source
        self._max_record_chars = max_record_chars
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._json = json.JSONDecoder()
        self._buffer = ""
        self._pos = 0  # an index, not slicing: slicing a 1 MB buffer per record is quadratic
        self._eof = False
        self.is_array: bool | None = None
        self.count = 0

    def _read_more(self) -> bool:
        """Append the next chunk to what is left of the buffer; False at the end of the stream."""
        if self._eof:
            return False
        chunk = next(self._chunks, None)
        if chunk is None:
            self._eof = True
            text = self._decoder.decode(b"", final=True)
        else:
            text = self._decoder.decode(chunk)
        self._buffer = self._buffer[self._pos :] + text
        self._pos = 0
        return chunk is not None

    def _skip_separators(self) -> bool:
        """Move past whitespace and commas; False when nothing is left at all."""
        while True:
            while self._pos < len(self._buffer) and self._buffer[self._pos] in _SEPARATORS:
                self._pos += 1
            if self._pos < len(self._buffer):
                return True
            if not self._read_more():
                return False

    def _detect_format(self) -> None:
        if not self._skip_separators():
            self.is_array = False  # an empty file: zero records, either format
            return
        self.is_array = self._buffer[self._pos] == "["
        if self.is_array:
            self._pos += 1

    def __iter__(self) -> Iterator[dict]:
        self._detect_format()
        while self._skip_separators():
            if self.is_array and self._buffer[self._pos] == "]":
                return
            yield self._decode_one()
        if self.is_array:
            raise DataError(
                f"{self._source}: the JSON array ends without ']' after record {self.count} "
                f"(the file was cut off; fetch it again with --refetch-dialogues)"
            )

    def _decode_one(self) -> dict:
        while True:
            try:
                value, end = self._json.raw_decode(self._buffer, self._pos)
            except json.JSONDecodeError as err:
                if self._may_be_cut_off(err) and self._read_more():
                    self._check_record_size()
                    continue
                raise self._malformed(err) from None
            self._pos = end
            self.count += 1
            if not isinstance(value, dict):
                raise DataError(f"{self._source}: record {self.count} is not a JSON object")
            return value

    def _may_be_cut_off(self, err: json.JSONDecodeError) -> bool:
        """Whether the error can mean "the record goes on in the next chunk" rather than "damaged"."""
        if err.msg.startswith("Unterminated string"):
            return True  # raised only when the string runs into the end of the buffer
        return err.pos >= len(self._buffer) - _TRUNCATION_MARGIN

    def _check_record_size(self) -> None:
        """Stop before one unfinished record holds the whole stream in memory."""
        pending = len(self._buffer) - self._pos
        if pending > self._max_record_chars:
            raise DataError(
                f"{self._source}: record {self.count + 1} is longer than {self._max_record_chars:,} characters "
                f"without ending (a missing quote or brace?); the file is damaged: fetch it again "
                f"with --refetch-dialogues"
            )

    def _malformed(self, err: json.JSONDecodeError) -> DataError:
        """The error for a record that cannot be decoded, with the text around the fault."""
        start = max(self._pos, err.pos - 30)
        excerpt = self._buffer[start : err.pos + 30]
        return DataError(
            f"{self._source}: malformed JSON in record {self.count + 1}: {err.msg} near {excerpt!r} "
            f"(the file is damaged or was cut off; fetch it again with --refetch-dialogues)"
        )


def file_chunks(path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The bytes of a file, chunk by chunk."""
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            yield chunk


def iter_file_records(path: str | Path) -> Iterator[dict]:
    """The records of a JSON-array or JSON-lines file on disk, one at a time."""
    return iter(RecordReader(file_chunks(path), source=str(path)))


def write_records(path: Path, records: list[dict], as_array: bool) -> None:
    """Write records in the published format (an indented JSON array, or JSON lines)."""
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "w", encoding="utf-8") as handle:
        if as_array:
            json.dump(records, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        else:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(path)
