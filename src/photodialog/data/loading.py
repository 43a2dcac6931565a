"""Load PhotoChat or DialogCC from disk into the schema, skipping and counting bad records.

``load_dialogues(path, split)`` is the entry point for everything that trains or evaluates:

1. **find** the files of the split (``find_sources``): ``DIR/{train,dev,test}/*.json|*.jsonl``
   (PhotoChat), ``DIR/{train,valid,test}.json|.jsonl`` (DialogCC), a single file whose records
   carry a ``split`` field, Parquet files, or a saved Hugging Face ``datasets`` folder;
2. **read** the records of each file (JSON array or JSONL) and pick the file's format from them;
3. **parse** each record into a *message-level* dialogue (one ``Turn`` per published message;
   ``photochat.py`` and ``dialogcc.py``), resolve its photos' local files under
   ``ROOT/photos/`` (``layout.find_photo`` by ``photo_id``, then by URL);
4. **merge** consecutive messages of one speaker into the schema's turns (``merge_messages``).

``load_messages`` stops after step 3: ``stats.py`` counts Table 1 from the published messages.

Every problem is a message naming the file, the record and the key (``report.py``); by default
the record is skipped and counted, with ``strict=True`` the first one raises ``DataError``.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photodialog import IMG_END, IMG_START
from photodialog import json_limits
from photodialog.data import photochat
from photodialog.data.layout import IMAGE_EXTENSIONS, PHOTO_DIR, SPLITS, WORLD_FILE, canonical_split, find_photo, photo_stems
from photodialog.data.photos import verify_photo
from photodialog.data.load_report import (
    EMPTY_DIALOGUE,
    FILE_SKIPPED,
    MALFORMED_JSON,
    PHOTO_LINK_OUTSIDE,
    PHOTO_MISSING,
    UNKNOWN_FORMAT,
    UNREADABLE_FILE,
    UNREADABLE_PHOTO,
    WRONG_TYPE,
    LoadReport,
    RecordProblem,
    describe_type,
    raise_or_count,
)
from photodialog.data.schema import Dialogue, Photo, Turn, photo_turn_text
from photodialog.errors import DataError, UserError, require
from photodialog.registry import DATASET_FORMATS

log = logging.getLogger(__name__)

FORMATS = tuple(DATASET_FORMATS.load(name) for name in DATASET_FORMATS.names)  # tried in this order on a file's records
DATA_SUFFIXES = (".json", ".jsonl", ".parquet")
_NAME_PARTS = re.compile(r"[-_.]")
_PROGRESS_MIN_RECORDS = 20_000  # below this a file parses in well under a second


@dataclass
class SourceFile:
    """One file (or one split of a saved ``datasets`` folder) to read records from."""

    path: Path
    split: str = ""  # the split its location implies; "" when its name says nothing
    hf_split: str | None = None  # set for a saved ``datasets`` folder: the split's name inside it


@dataclass
class RawRecord:
    """A record as read from a file, before parsing; ``error`` is set for an unparsable JSONL line."""

    index: int
    value: Any
    line: int | None = None
    error: str | None = None


# --- public entry points -----------------------------------------------------------------


def load_dialogues(
    path: str | Path,
    split: str | None = None,
    *,
    strict: bool = False,
    report: LoadReport | None = None,
    photo_root: str | Path | None = None,
    check_photos: bool = False,
    progress: bool = True,
) -> list[Dialogue]:
    """Dialogues of ``split`` (``None``: every split found) from a dataset folder or one file.

    Turns follow the evaluation protocol: consecutive messages of one speaker are joined with
    a space, a shared photo is ``[IMG] caption [/IMG]`` in the text plus a ``Photo`` (with its
    absolute local ``path`` when the file is under ``photo_root``/photos, which defaults to the
    dataset folder). ``check_photos`` decodes every local photo and treats a corrupt one as
    missing (slow on big datasets). ``progress=False`` hides the reading and checking bars
    (``--no-progress``). Raises ``DataError`` in strict mode at the first problem,
    and whenever no usable dialogue is left; ``UserError`` if ``path`` does not exist.
    """
    with _gc_paused():
        messages = load_messages(
            path, split, strict=strict, report=report, photo_root=photo_root, check_photos=check_photos,
            progress=progress,
        )
        return [merge_messages(dialogue) for dialogue in messages]


def load_messages(
    path: str | Path,
    split: str | None = None,
    *,
    strict: bool = False,
    report: LoadReport | None = None,
    photo_root: str | Path | None = None,
    check_photos: bool = False,
    progress: bool = True,
) -> list[Dialogue]:
    """Like ``load_dialogues`` but *message-level*: one ``Turn`` per published message, unmerged.

    A photo message keeps its own text (usually empty in PhotoChat) in ``Turn.text``; its photos
    are in ``Turn.photos``. This is what Table 1 counts (``stats.py``).
    """
    path = Path(path)
    split = canonical_split(split) if split else None
    own_report = report is None
    report = LoadReport() if report is None else report
    finder = PhotoFinder(Path(photo_root) if photo_root else dataset_root(path))
    dialogues: list[Dialogue] = []
    with _gc_paused():
        for source in find_sources(path, split):
            dialogues += _load_source(source, split, report, strict, finder, progress)
    for link, target in finder.outside_links:
        raise_or_count(report, strict, PHOTO_LINK_OUTSIDE, f"{link} links to {target}, outside the dataset folder", PHOTO_MISSING)
    if check_photos:
        check_photo_files(dialogues, report, strict, progress)
    if not dialogues:
        raise DataError(_nothing_usable(path, split, report))
    if own_report and not report.ok:
        log.warning("%s", report.summary())  # nobody else will show it
    return dialogues


def merge_messages(dialogue: Dialogue) -> Dialogue:
    """The schema's turns from a message-level dialogue: one turn per run of one speaker.

    Pieces are joined with a single space: a message's text, then ``[IMG] caption [/IMG]`` for
    each photo it shares (``Turn.photos`` in the same order). Empty messages add nothing.
    """
    turns: list[Turn] = []
    for message in dialogue.turns:
        piece = _message_text(message)
        if not piece:
            continue
        if turns and turns[-1].speaker == message.speaker:
            turns[-1].text = f"{turns[-1].text} {piece}"
            turns[-1].photos.extend(message.photos)
        else:
            turns.append(Turn(speaker=message.speaker, text=piece, photos=list(message.photos)))
    return Dialogue(dialogue_id=dialogue.dialogue_id, turns=turns, split=dialogue.split, source=dialogue.source)


def dataset_root(path: str | Path) -> Path:
    """The dataset folder a path belongs to (where ``photos/`` lives).

    ``DIR`` for ``DIR``, ``DIR/train``, ``DIR/train/x.json`` and ``DIR/train.json``.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if _split_named(folder.name) and not (folder / PHOTO_DIR).is_dir():
        return folder.parent
    return folder


def dataset_name(path: str | Path) -> str:
    """``synthetic`` for a synthetic world, else the dataset folder's name (photochat, dialogcc...)."""
    root = dataset_root(path)
    return "synthetic" if (root / WORLD_FILE).is_file() else root.resolve().name


def dataset_format(path: str | Path) -> str | None:
    """What the dataset is, from its own files, not its folder's name: ``synthetic`` for a synthetic
    world (its ``world.json``), else the format (``photochat``, ``dialogcc``) of the records of its
    first readable file; None when there is no such file or no record of a known format."""
    root = dataset_root(path)
    if (root / WORLD_FILE).is_file():
        return "synthetic"
    try:
        sources = find_sources(Path(path))
    except (UserError, DataError):
        return None
    # The smallest file first: its records say the same, and a DialogCC train.json is hundreds of MB.
    for source in sorted(sources, key=lambda s: s.path.stat().st_size if s.path.is_file() else 0):
        records = read_records(source, LoadReport(), strict=False)
        parser = _pick_format(records) if records else None
        if parser is not None:
            return DATASET_FORMATS.names[FORMATS.index(parser)]  # the registry's name: photochat, dialogcc
    return None


@contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector while building many small objects.

    Loading creates hundreds of thousands of dataclasses and none of them form reference
    cycles, yet each burst of allocations triggers a full collection pass: pausing it halves
    the loading time of DialogCC-sized files.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- finding files -----------------------------------------------------------------------


def find_sources(path: Path, split: str | None = None) -> list[SourceFile]:
    """The files to read for ``split`` (all splits when None), with the split each implies."""
    if not path.exists():
        raise UserError(f"no such file or folder: {path}")
    if path.is_file():
        return [SourceFile(path, _split_named(path.stem) or _split_named(path.parent.name))]
    if _is_saved_datasets_folder(path):
        sources = _datasets_sources(path)
    else:
        sources = _split_layout_sources(path) or _data_files(path, "")
    found = sorted({s.split or "(no split in name)" for s in sources})
    if split:
        sources = [s for s in sources if s.split in (split, "")]
    if not sources:
        wanted = f" for split '{split}'" if split else ""
        raise DataError(f"no dataset files{wanted} in {path} (found: {', '.join(found) or 'none'}); expected {LAYOUTS}")
    return sources


# The folder layouts find_sources reads, named in its message when it finds none.
LAYOUTS = ("DIR/{train,dev,test}/*.json|*.jsonl|*.parquet (PhotoChat), DIR/{train,valid,test}.json|.jsonl|.parquet "
           "(DialogCC), the Hub's Parquet files DIR/data/{train,validation,test}-*.parquet or its converted-Parquet "
           "branch (refs/convert/parquet) DIR/CONFIG/{train,validation,test}/*.parquet, or a datasets save_to_disk folder")


def _split_layout_sources(folder: Path) -> list[SourceFile]:
    """Split folders and split-named files in ``folder`` (or ``folder`` itself as one split)."""
    sources: list[SourceFile] = []
    for child in sorted(folder.iterdir()):
        if child.is_dir() and _split_named(child.name):
            sources += _data_files(child, _split_named(child.name))
        elif child.is_file() and child.suffix in DATA_SUFFIXES and _split_named(child.stem):
            sources.append(SourceFile(child, _split_named(child.stem)))
    if not sources and _split_named(folder.name):
        sources = _data_files(folder, _split_named(folder.name))
    if not sources and (folder / "data").is_dir():  # the Hugging Face hub's Parquet layout
        sources = [s for s in _data_files(folder / "data", "") if s.split]
    if not sources:
        sources = _converted_parquet_sources(folder)
    return sources


def _converted_parquet_sources(folder: Path) -> list[SourceFile]:
    """The Hub's converted-Parquet branch (``refs/convert/parquet``): ``CONFIG/SPLIT/NNNN.parquet``
    (``SPLIT`` also ``partial-SPLIT``). One configuration only: with several, which one trains is
    the user's choice, and the message names them."""
    configs = [child for child in sorted(folder.iterdir()) if child.is_dir() and not child.name.startswith(".")
               and any(sub.is_dir() and _split_named(sub.name) and list(sub.glob("*.parquet")) for sub in child.iterdir())]
    if len(configs) > 1:
        raise DataError(f"{folder} holds the converted Parquet files of several configurations "
                        f"({', '.join(c.name for c in configs)}); give one of them, e.g. {configs[0]}")
    if not configs:
        return []
    return [SourceFile(file, _split_named(sub.name)) for sub in sorted(configs[0].iterdir())
            if sub.is_dir() and _split_named(sub.name) for file in sorted(sub.glob("*.parquet"))]


def _data_files(folder: Path, split: str) -> list[SourceFile]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in DATA_SUFFIXES and not p.name.startswith("."))
    return [SourceFile(p, split or _split_named(p.stem)) for p in files]


def _split_named(name: str) -> str:
    """The split a file or folder name stands for ("train", "valid.jsonl", "test-00000-of-00001"), or ""."""
    name = name.removeprefix("partial-")  # the Hub's converted-Parquet name of a split it converted in part
    split = canonical_split(_NAME_PARTS.split(name, maxsplit=1)[0])
    return split if split in SPLITS else ""


def _is_saved_datasets_folder(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (
        (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file()
    )


def _datasets_sources(folder: Path) -> list[SourceFile]:
    """One source per split of a ``DatasetDict.save_to_disk`` folder (or the folder, for one Dataset)."""
    index = folder / "dataset_dict.json"
    if not index.is_file():
        return [SourceFile(folder, _split_named(folder.name), hf_split="")]
    try:
        names = json_limits.loads(index.read_text(encoding="utf-8"))["splits"]  # TooDeep is a ValueError
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{index} is not a valid datasets index ({err}); save the dataset again") from None
    return [SourceFile(folder, canonical_split(name), hf_split=name) for name in names]


# --- reading records ---------------------------------------------------------------------


def read_records(source: SourceFile, report: LoadReport, strict: bool) -> list[RawRecord] | None:
    """The records of one source, or None when the whole file is unusable (counted in ``report``)."""
    if source.hf_split is not None:
        return _datasets_records(source, report, strict)
    if source.path.suffix == ".parquet":
        return _parquet_records(source, report, strict)
    return _json_records(source.path, report, strict)


def _json_records(path: Path, report: LoadReport, strict: bool) -> list[RawRecord] | None:
    too_large = json_limits.file_too_large(path, json_limits.MAX_DATASET_FILE_BYTES)
    if too_large:  # read whole, it would take several times its size in memory
        raise_or_count(report, strict, UNREADABLE_FILE,
                       f"{too_large}; split it into several files in the split's folder, or use JSONL or Parquet",
                       FILE_SKIPPED)
        return None
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise_or_count(report, strict, UNREADABLE_FILE, f"{path}: cannot read the file ({err.strerror or err})", FILE_SKIPPED)
        return None
    # Bytes that are not UTF-8 become lone surrogates here, so a bad byte costs only the
    # record that holds it (the parsers report it by key), not the whole file.
    text = raw.decode("utf-8-sig", errors="surrogateescape")
    if path.suffix == ".jsonl":
        return _jsonl_records(text)
    try:
        data = json_limits.loads(text)
    except json_limits.TooDeep as err:
        if _first_line_is_record(text):  # JSONL saved with a .json name: a deep line costs only its record
            return _jsonl_records(text)
        raise_or_count(report, strict, MALFORMED_JSON, f"{path}: {err}; {json_limits.DEPTH_ADVICE}", FILE_SKIPPED)
        return None
    except json.JSONDecodeError as err:
        if _first_line_is_record(text):  # JSONL saved with a .json name
            return _jsonl_records(text)
        raise_or_count(
            report, strict, MALFORMED_JSON,
            f"{path}: malformed JSON at line {err.lineno}, column {err.colno} ({err.msg}); a download "
            "cut short or a hand edit is the usual cause: fetch or fix the file",
            FILE_SKIPPED,
        )
        return None
    if isinstance(data, dict) and "dialogue" in data:
        data = [data]  # a file holding a single record
    if not isinstance(data, list):
        raise_or_count(
            report, strict, WRONG_TYPE,
            f"{path}: expected a JSON array of dialogue records (or JSONL), found {describe_type(data)}",
            FILE_SKIPPED,
        )
        return None
    return [RawRecord(index, value) for index, value in enumerate(data)]


def _jsonl_records(text: str) -> list[RawRecord]:
    records = []
    # Split on "\n" only: str.splitlines would also split on U+2028, legal inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(RawRecord(number - 1, json_limits.loads(line), line=number))
        except json.JSONDecodeError as err:
            records.append(RawRecord(number - 1, None, line=number, error=f"{err.msg} at column {err.colno}"))
        except json_limits.TooDeep as err:
            records.append(RawRecord(number - 1, None, line=number, error=str(err)))
    return records


def _first_line_is_record(text: str) -> bool:
    lines = [line for line in text.split("\n", 2) if line.strip()]
    if len(lines) < 2:
        return False
    try:
        return isinstance(json_limits.loads(lines[0]), dict)
    except (json.JSONDecodeError, json_limits.TooDeep):
        return False


def _parquet_records(source: SourceFile, report: LoadReport, strict: bool) -> list[RawRecord] | None:
    parquet = require("pyarrow.parquet", "datasets", "reading Parquet dataset files")
    try:
        rows = parquet.read_table(source.path).to_pylist()
    except Exception as err:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise_or_count(report, strict, UNREADABLE_FILE, f"{source.path}: cannot read Parquet ({err})", FILE_SKIPPED)
        return None
    return [RawRecord(index, _rows_as_lists(row)) for index, row in enumerate(rows)]


def _datasets_records(source: SourceFile, report: LoadReport, strict: bool) -> list[RawRecord] | None:
    datasets = require("datasets", "datasets", "reading a saved Hugging Face datasets folder")
    try:
        dataset = datasets.load_from_disk(str(source.path))
        rows = (dataset[source.hf_split] if source.hf_split else dataset).to_list()
    except Exception as err:  # noqa: BLE001 - datasets raises many types for a bad folder
        raise_or_count(
            report, strict, UNREADABLE_FILE, f"{source.path}: cannot read split '{source.hf_split}' ({err})", FILE_SKIPPED
        )
        return None
    return [RawRecord(index, _rows_as_lists(row)) for index, row in enumerate(rows)]


_ROW_LIST_KEYS = ("dialogue", "shared_image")


def _rows_as_lists(record: Any) -> Any:
    """Columnar storage may give a list of objects as an object of lists; turn it back into rows."""
    if isinstance(record, dict):
        return {
            key: _rows_as_lists(_transposed(value) if key in _ROW_LIST_KEYS else value)
            for key, value in record.items()
        }
    if isinstance(record, list):
        return [_rows_as_lists(item) for item in record]
    return record


def _transposed(value: Any) -> Any:
    """``{"a": [1, 2], "b": [3, 4]}`` -> ``[{"a": 1, "b": 3}, {"a": 2, "b": 4}]``; anything else as is."""
    if not isinstance(value, dict) or not value or not all(isinstance(v, list) for v in value.values()):
        return value
    lengths = {len(v) for v in value.values()}
    if len(lengths) != 1:
        return value
    return [{key: column[i] for key, column in value.items()} for i in range(lengths.pop())]


# --- parsing -----------------------------------------------------------------------------


def _load_source(
    source: SourceFile, split: str | None, report: LoadReport, strict: bool, finder: PhotoFinder, progress: bool
) -> list[Dialogue]:
    records = read_records(source, report, strict)
    if records is None:
        return []
    report.files_read += 1
    parser = _pick_format(records)
    if parser is None:
        if any(r.error is None for r in records):
            raise_or_count(report, strict, UNKNOWN_FORMAT, _unknown_format(source, records), FILE_SKIPPED)
            return []
        parser = photochat  # every line is malformed JSON: each is reported as such below
    dialogues = []
    for record in _progress(records, source, progress):
        record_split = _record_split(record.value) or source.split
        if split and record_split and record_split != split:
            continue  # another split's record in a single-file dataset
        report.records_read += 1
        try:
            dialogue = _parse(parser, record)
        except RecordProblem as problem:
            raise_or_count(report, strict, problem.reason, f"{_where(source, record)}: {problem.detail}")
            continue
        dialogue.split = record_split or split or ""
        dialogue.source = f"{source.path}:{record.index}"
        finder.resolve_all(dialogue)
        dialogues.append(dialogue)
        report.formats[parser.NAME] += 1
    report.dialogues_loaded += len(dialogues)
    return dialogues


def _pick_format(records: list[RawRecord]):
    for record in records:
        for parser in FORMATS:
            if record.error is None and parser.looks_like(record.value):
                return parser
    return None


def _parse(parser, record: RawRecord) -> Dialogue:
    if record.error is not None:
        raise RecordProblem(MALFORMED_JSON, f"malformed JSON ({record.error})")
    return parse_dialogue(parser, record.value)


def parse_dialogue(parser, value: Any) -> Dialogue:
    """One record as the loader reads it (``parser``: ``photochat`` or ``dialogcc``).

    Raises ``RecordProblem`` for every record the loader skips. `data download` lists the photos
    to fetch with this too, so that it fetches exactly the photos training will look for.
    """
    dialogue = parser.parse_record(value)
    if not dialogue.turns:
        raise RecordProblem(EMPTY_DIALOGUE, "'dialogue' is an empty list")
    if not any(turn.text.strip() or turn.photos for turn in dialogue.turns):
        raise RecordProblem(EMPTY_DIALOGUE, "every message of the dialogue is empty")
    return dialogue


def _record_split(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("split"), str):
        return canonical_split(value["split"])
    return ""


def _where(source: SourceFile, record: RawRecord) -> str:
    """"FILE, record N (line L), dialogue_id X": enough to find the record in an editor."""
    where = f"{source.path}" + (f" [{source.hf_split}]" if source.hf_split else "") + f", record {record.index}"
    if record.line is not None:
        where += f" (line {record.line})"
    if isinstance(record.value, dict) and isinstance(record.value.get("dialogue_id"), (str, int)):
        where += f", dialogue_id {record.value['dialogue_id']}"
    return where


def _unknown_format(source: SourceFile, records: list[RawRecord]) -> str:
    first = next((r.value for r in records if r.error is None), None)
    keys = ", ".join(sorted(map(str, first))) if isinstance(first, dict) else describe_type(first)
    return (
        f"{source.path}: records match neither PhotoChat (a 'dialogue' of {{message, share_photo, user_id}}) "
        f"nor DialogCC (a 'dialogue' of {{utterance, speaker, shared_image}}); the first record has: {keys}"
    )


def _progress(records: list[RawRecord], source: SourceFile, enabled: bool):
    if not enabled or len(records) < _PROGRESS_MIN_RECORDS:
        return records
    # progress bars only where they are shown; keeps light callers light
    from tqdm.auto import tqdm

    return tqdm(records, desc=f"reading {source.path.name}", unit="dialogue", leave=False)


def _nothing_usable(path: Path, split: str | None, report: LoadReport) -> str:
    of_split = f" of split '{split}'" if split else ""
    if report.records_read == 0 and report.ok:
        return f"no dialogue records{of_split} in {path}"
    return f"no usable dialogues{of_split} in {path}: every record had a problem.\n{report.summary()}"


def _message_text(message: Turn) -> str:
    """A message's piece of its turn: its text, then one ``[IMG] caption [/IMG]`` per photo."""
    text = _without_markers(message.text).strip()
    if not message.photos:
        return text
    pieces = [text] + [photo_turn_text(_without_markers(photo.caption)) for photo in message.photos]
    return " ".join(piece for piece in pieces if piece)


def _without_markers(text: str) -> str:
    """The photo markers are reserved: one typed in a message would break the photo/span pairing."""
    if IMG_START in text or IMG_END in text:
        return " ".join(text.replace(IMG_END, " ").replace(IMG_START, " ").split())
    return text


# --- photos ------------------------------------------------------------------------------


class PhotoFinder:
    """Finds each photo's file under ``root/photos`` by ``photo_id``, else by URL.

    Same answer as ``layout.find_photo`` (same extension order), but each folder of
    ``photos/`` is listed once instead of probing every extension of every photo: that makes
    DialogCC's tens of thousands of photos a dictionary look-up each.
    """

    def __init__(self, root: Path):
        self.root = root.absolute()
        self._enabled = (self.root / PHOTO_DIR).is_dir()
        self._listings: dict[str, frozenset[str]] = {}
        self._cache: dict[tuple[str | None, str | None], str | None] = {}
        self._real_root: Path | None = None  # where photos/ really is
        self.outside_links: list[tuple[str, str]] = []  # (photo file, where it leads): refused, reported

    def resolve_all(self, dialogue: Dialogue) -> None:
        """Set ``Photo.path`` (absolute, or None) for every photo of ``dialogue``."""
        for turn in dialogue.turns:
            for photo in turn.photos:
                photo.path = self.find(photo)

    def find(self, photo: Photo) -> str | None:
        """The local file of ``photo`` (by ``photo_id``, then by URL) or None; cached per photo."""
        if not self._enabled:
            return None
        key = (photo.photo_id, photo.url)
        if key not in self._cache:
            self._cache[key] = self._search(photo)
        return self._cache[key]

    def _search(self, photo: Photo) -> str | None:
        # By id first (PhotoChat, synthetic worlds), then by URL: a file fetched for a record
        # without photo_id is stored under the URL's hash (layout.photo_stems).
        for stem in photo_stems(photo.photo_id, photo.url):
            found = self._find_stem(stem)
            if found is not None:
                return found
        return None

    def _find_stem(self, stem: str) -> str | None:
        folder, _, name = stem.rpartition("/")
        listing = self._listing(folder)
        if listing is None:  # folder unreadable: ask the file system directly
            found = find_photo(self.root, stem)
            return self._inside(found) if found is not None else None
        for extension in IMAGE_EXTENSIONS:
            if name + extension in listing:
                return self._inside(self.root / PHOTO_DIR / folder / (name + extension))
        return None

    def _inside(self, path: Path) -> str | None:
        """``path`` if it (through any links) stays in the dataset folder; else None, recorded.

        A photo is data of this dataset: a link out of it could make training or ``data check``
        read any file the user can read (and a dataset from elsewhere can carry such links).
        """
        if self._real_root is None:
            # photos/ itself may be a link (photos kept on another disk): its target counts as inside.
            self._real_root = (self.root / PHOTO_DIR).resolve()
        real = path.resolve()
        if real.is_relative_to(self._real_root):
            return str(path)
        self.outside_links.append((str(path), str(real)))
        return None

    def _listing(self, folder: str) -> frozenset[str] | None:
        if folder not in self._listings:
            try:
                with os.scandir(self.root / PHOTO_DIR / folder) as entries:
                    self._listings[folder] = frozenset(e.name for e in entries if e.is_file())
            except FileNotFoundError:
                self._listings[folder] = frozenset()
            except OSError:
                return None
        return self._listings[folder]


def check_photo_files(dialogues: list[Dialogue], report: LoadReport, strict: bool, progress: bool = True) -> None:
    """Decode every local photo once; a corrupt one is reported and its ``path`` set to None.

    The photo stays in the dialogue as text (its caption), exactly like a photo whose URL is
    dead; ``report`` counts the unreadable files.
    """
    # progress bars only where they are shown; keeps light callers light
    from tqdm.auto import tqdm

    first_use: dict[str, str] = {}
    for dialogue in dialogues:
        for photo in _photos(dialogue):
            if photo.path:
                first_use.setdefault(photo.path, dialogue.source)
    bad: set[str] = set()
    for path in tqdm(first_use, desc="checking photos", unit="photo", disable=not progress or len(first_use) < 200, leave=False):
        try:
            verify_photo(path)
        except DataError as err:
            raise_or_count(report, strict, UNREADABLE_PHOTO, f"{first_use[path]}: {err}", PHOTO_MISSING)
            bad.add(path)
    for dialogue in dialogues:
        for photo in _photos(dialogue):
            if photo.path in bad:
                photo.path = None


def _photos(dialogue: Dialogue):
    return (photo for turn in dialogue.turns for photo in turn.photos)
