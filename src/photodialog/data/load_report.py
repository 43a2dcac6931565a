"""What went wrong while loading a dataset: one message per problem, counted by reason.

Loaders never crash on a bad record. Each problem (a file that is not JSON, a record with a
missing key or a wrong type, an empty dialogue, a photo without a caption, text that is not
UTF-8, a photo file that cannot be decoded) becomes a message naming the file, the record and
the key. By default the record is skipped and counted in a ``LoadReport``; in strict mode the
first problem raises ``DataError`` (exit code 3 on the command line).

This module also holds the small typed accessors the format parsers use, so that every
"missing key" or "wrong type" message reads the same whatever the dataset.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from photodialog.errors import DataError

# Reasons a problem is counted under (the keys of ``LoadReport.counts``).
MALFORMED_JSON = "malformed JSON"
NOT_UTF8 = "not UTF-8"
UNREADABLE_FILE = "unreadable file"
UNKNOWN_FORMAT = "unknown format"
MISSING_KEY = "missing key"
WRONG_TYPE = "wrong type"
EMPTY_DIALOGUE = "empty dialogue"
PHOTO_WITHOUT_CAPTION = "photo without caption"
UNREADABLE_PHOTO = "unreadable photo"
PHOTO_LINK_OUTSIDE = "photo link leaving the dataset folder"


class RecordProblem(Exception):
    """Raised by a format parser for a record it cannot use; the loader adds file and record."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class LoadReport:
    """Counts and first messages of the problems met while loading, plus what was loaded.

    ``counts`` maps a reason (the constants of this module) to how many times it occurred;
    ``messages`` keeps the first ``max_messages`` messages in full.
    """

    max_messages: int = 10
    counts: Counter = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)
    files_read: int = 0
    records_read: int = 0
    dialogues_loaded: int = 0
    formats: Counter = field(default_factory=Counter)  # dialogues loaded per dataset format

    def add(self, reason: str, message: str) -> None:
        """Count one problem and keep its message if there is room."""
        self.counts[reason] += 1
        if len(self.messages) < self.max_messages:
            self.messages.append(message)

    @property
    def problems(self) -> int:
        """How many records or files were skipped, all reasons together."""
        return sum(self.counts.values())

    @property
    def ok(self) -> bool:
        """True when nothing was skipped."""
        return not self.counts

    def summary(self) -> str:
        """A few lines for a person: what was loaded, what was skipped and why, first messages."""
        loaded = (
            f"loaded {_count(self.dialogues_loaded, 'dialogue')} from {_count(self.records_read, 'record')} "
            f"in {_count(self.files_read, 'file')}"
        )
        if self.ok:
            return loaded + "; no problems"
        reasons = ", ".join(f"{n:,} {reason}" for reason, n in self.counts.most_common())
        lines = [f"{loaded}; {_count(self.problems, 'problem')} ({reasons}):"]
        lines += [f"  - {message}" for message in self.messages]
        hidden = self.problems - len(self.messages)
        if hidden > 0:
            lines.append(f"  ... and {hidden:,} more")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """A JSON-ready view, for ``--json`` outputs."""
        return {
            "files_read": self.files_read,
            "records_read": self.records_read,
            "dialogues_loaded": self.dialogues_loaded,
            "formats": dict(self.formats),
            "problems": dict(self.counts),
            "messages": list(self.messages),
        }


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


# What happens to the data when a problem is counted (strict mode raises instead).
RECORD_SKIPPED = "record skipped"
FILE_SKIPPED = "file skipped"
PHOTO_MISSING = "photo treated as missing"


def raise_or_count(report: LoadReport, strict: bool, reason: str, message: str, outcome: str = RECORD_SKIPPED) -> None:
    """Strict mode stops at the first problem; otherwise it is counted (message + outcome) and loading goes on."""
    if strict:
        raise DataError(
            f"{message}\n(strict mode stops at the first problem: fix or remove it, "
            "or load without strict mode to skip bad records and count them)"
        )
    report.add(reason, f"{message}; {outcome}")


# --- typed access to record fields, shared by the format parsers -------------------------

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true/false", list: "a list", dict: "an object"}


def describe_type(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def expect_mapping(value: Any, where: str) -> dict:
    """``value`` if it is a JSON object, else a wrong-type problem."""
    if not isinstance(value, dict):
        raise RecordProblem(WRONG_TYPE, f"{where} should be an object, not {describe_type(value)}")
    return value


def required(mapping: dict, key: str, types: tuple[type, ...], where: str = "") -> Any:
    """The value of ``key`` in ``mapping``, checked against ``types`` (bool never passes as int)."""
    if key not in mapping:
        found = ", ".join(sorted(map(str, mapping))) or "nothing"
        raise RecordProblem(MISSING_KEY, f"missing key '{key}'{_in(where)} (found: {found})")
    return _checked(mapping[key], key, types, where)


def optional(mapping: dict, key: str, types: tuple[type, ...], where: str = "", default: Any = None) -> Any:
    """Like ``required``, but a missing key or a null value gives ``default``."""
    value = mapping.get(key)
    if value is None:
        return default
    return _checked(value, key, types, where)


def optional_text(mapping: dict, key: str, where: str = "") -> str | None:
    """An optional id, URL or caption as stripped text; missing, null or blank gives None."""
    value = optional(mapping, key, (str, int), where)
    text = "" if value is None else str(value).strip()
    return text or None


def checked_text(value: str, key: str, where: str = "") -> str:
    """``value`` unless it holds bytes that were not UTF-8 (decoded as lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordProblem(
            NOT_UTF8,
            f"'{key}'{_in(where)} is not valid UTF-8 text; re-encode the file as UTF-8",
        ) from None
    return value


def _checked(value: Any, key: str, types: tuple[type, ...], where: str) -> Any:
    if isinstance(value, bool) and bool not in types:
        ok = False  # JSON true/false are Python ints, but never a valid id or count here
    else:
        ok = isinstance(value, types)
    if not ok:
        wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
        raise RecordProblem(WRONG_TYPE, f"'{key}'{_in(where)} should be {wanted}, not {describe_type(value)}")
    if isinstance(value, str):
        checked_text(value, key, where)
    return value


def _in(where: str) -> str:
    return f" in {where}" if where else ""
