"""Bounds on the JSON (and YAML) that users give photodialog: nesting depth and file size.

Python's ``json`` and PyYAML parse nested arrays by recursion: a file nested a few thousand
levels deep (``[[[[...]]]]``) raises ``RecursionError``, and a value nested a few hundred
levels deep passes the parser and breaks later code (``repr`` of it in a message, a copy).
A file of hundreds of MB becomes several GB of Python objects. So every file a user gives
(dataset files, ``chat --history``, recipes and overrides) is checked against ``MAX_DEPTH``
and a size limit first, and a breach is an error naming the file and the limit, never a
traceback or a process killed for memory.

The depth is measured on the text, before parsing, without recursion: the brackets outside
JSON strings (``nesting_depth``). Parsed values (YAML) are measured by ``value_depth``.

YAML is read by ``load_yaml``, which refuses anchors' aliases (``*name``): a few hundred bytes of
nested aliases ("billion laughs") stand for billions of nodes, which every walk over the value
(the depth check, a copy, the config schema) would visit. No photodialog file needs them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

# Dialogue records nest 4 to 6 levels (an array of records, a record, its messages, a message,
# its photos, a photo); 64 leaves room for any real format and stays far below the recursion
# limit of Python's parsers (about 1,000).
MAX_DEPTH = 64

# A JSON dataset file is read whole; a 1 GiB file becomes several GB of Python objects. Larger
# datasets can be split into several files per split, or given as JSONL or Parquet.
MAX_DATASET_FILE_BYTES = 1 << 30

# A recipe is a page of YAML; an eval result a few pages of JSON.
MAX_RECIPE_BYTES = 1 << 20
MAX_RESULT_BYTES = 64 << 20

DEPTH_ADVICE = "no dialogue format nests that deep: the file is damaged, or not what this command reads"

# A JSON string: quotes around characters that are not quotes or backslashes, or escapes.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class TooDeep(ValueError):
    """JSON text or a parsed value nested deeper than the limit."""

    def __init__(self, depth: int, limit: int):
        super().__init__(f"nested {depth:,} levels deep, over the limit of {limit} levels")
        self.depth, self.limit = depth, limit


def nesting_depth(text: str) -> int:
    """How deep the arrays and objects of JSON ``text`` nest (0 for a bare value).

    Brackets inside strings do not count. Runs at the speed of the regex engine (no Python
    loop per character), so a file of hundreds of MB is measured in about a second.
    """
    # only this path needs numpy; keeps light callers light
    import numpy as np

    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    return max(int(np.cumsum(steps).max()), 0)


def loads(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(text)`` after checking its depth: raises ``TooDeep`` or ``json.JSONDecodeError``."""
    # Fewer opening brackets than the limit cannot nest past it: one JSONL record skips the scan.
    depth = 0 if text.count("[") + text.count("{") <= max_depth else nesting_depth(text)
    if depth > max_depth:
        raise TooDeep(depth, max_depth)
    try:
        return json.loads(text)
    except RecursionError:  # unreachable below the limit; kept so that no parser recursion escapes
        raise TooDeep(depth, max_depth) from None


class YamlAlias(ValueError):
    """YAML text that uses an alias (``*name``), which ``load_yaml`` refuses."""


def load_yaml(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``yaml.safe_load(text)`` without aliases, checked for depth.

    Raises ``YamlAlias`` at the first alias (``*name``, also ``<<: *name``), before any value is
    built; ``yaml.YAMLError`` for text that is not YAML; ``TooDeep`` (or ``RecursionError`` from
    PyYAML's recursive parser) for a value nested deeper than ``max_depth``.
    """
    # only reading a recipe needs PyYAML
    import yaml

    class _NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise YamlAlias(f"an alias (*{event.anchor}) at line {event.start_mark.line + 1}; anchors (&name) and "
                                "aliases are not accepted: write each value out")
            return super().compose_node(parent, index)

    loader = _NoAliasLoader(text)
    try:
        return check_value_depth(loader.get_single_data(), max_depth)
    finally:
        loader.dispose()


def value_depth(value: Any) -> int:
    """How deep lists and dicts nest in ``value`` (a parsed YAML or JSON value); no recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, (list, tuple)):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in item)
    return deepest


def check_value_depth(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """``value`` itself, or ``TooDeep`` when it nests deeper than ``max_depth``."""
    depth = value_depth(value)
    if depth > max_depth:
        raise TooDeep(depth, max_depth)
    return value


def file_too_large(path: Path, limit: int) -> str | None:
    """Why ``path`` is too large to read whole (its size and the limit), or None when it is not."""
    try:
        size = path.stat().st_size
    except OSError:
        return None  # the read that follows reports a missing or unreadable file in its own words
    if size <= limit:
        return None
    return f"{path} is {_megabytes(size)}, more than the limit of {_megabytes(limit)} for this kind of file"


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.1f} MB" if size >= 2**20 else f"{size:,} bytes"
