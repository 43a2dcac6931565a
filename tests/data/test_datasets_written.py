"""The Parquet and saved-``datasets`` readers on files written by ``datasets`` itself.

DialogCC's column layout (a ``dialogue`` list of utterance structs, each with a ``shared_image``
list of image structs, often empty) goes through Arrow, which stores lists of structs as
columns and fills absent keys with nulls. Loading it back must give exactly what loading the
same records from the published JSON gives.
"""

from __future__ import annotations

import json

import pytest

from photodialog.data.loading import load_dialogues

from .helpers import FIXTURES

datasets = pytest.importorskip("datasets", reason="the [datasets] extra: pip install -e '.[datasets]'")


def _records(split: str) -> list[dict]:
    records = json.loads((FIXTURES / "dialogcc" / "train.json").read_text(encoding="utf-8"))
    for index, record in enumerate(records):
        record["split"] = split
        record["dialogue_id"] = f"{split}_{record['dialogue_id']}"
        if index == 1:  # a later turn that shares three photos, one with its own id
            record["dialogue"][2]["shared_image"] = [
                {"image_url": f"http://cc3m.example/{split}{i}.jpg", "caption": f"photo {i}"} for i in range(3)
            ]
            record["dialogue"][2]["shared_image"][2]["image_id"] = f"{split}-img-2"
    return records


def _summary(dialogues) -> list[tuple]:
    """Everything the loader produces that matters, photos included (paths aside)."""
    return [
        (d.dialogue_id, d.split, [(t.speaker, t.text, [(p.caption, p.url, p.photo_id) for p in t.photos]) for t in d.turns])
        for d in dialogues
    ]


@pytest.fixture(scope="module")
def splits() -> dict[str, list[dict]]:
    return {"train": _records("train"), "valid": _records("valid")}


@pytest.fixture(scope="module")
def expected(tmp_path_factory, splits) -> dict[str, list]:
    folder = tmp_path_factory.mktemp("json")
    for name, records in splits.items():
        (folder / f"{name}.json").write_text(json.dumps(records), encoding="utf-8")
    return {name: _summary(load_dialogues(folder, name, strict=True)) for name in splits}


def test_fixture_has_what_arrow_changes(splits):
    utterances = [u for r in splits["train"] for u in r["dialogue"]]
    counts = {len(u["shared_image"]) for u in utterances}
    assert {0, 1, 2, 3} <= counts  # empty, single and several photos per turn
    keys = [set(image) for u in utterances for image in u["shared_image"]]
    assert len({frozenset(k) for k in keys}) > 1  # images with different keys: Arrow fills nulls


def test_save_to_disk_folder_loads_as_the_json(tmp_path, splits, expected):
    folder = tmp_path / "dialogcc-saved"
    datasets.DatasetDict({name: datasets.Dataset.from_list(rows) for name, rows in splits.items()}).save_to_disk(str(folder))
    assert (folder / "dataset_dict.json").is_file()
    for name in splits:
        assert _summary(load_dialogues(folder, name, strict=True)) == expected[name]
    assert len(load_dialogues(folder, strict=True)) == 4


def test_single_saved_dataset_folder(tmp_path, splits, expected):
    folder = tmp_path / "train"  # one Dataset (no DatasetDict): the folder's name gives the split
    datasets.Dataset.from_list(splits["train"]).save_to_disk(str(folder))
    assert _summary(load_dialogues(folder, strict=True)) == expected["train"]


def test_to_parquet_files_load_as_the_json(tmp_path, splits, expected):
    for name, rows in splits.items():
        datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / f"{name}.parquet"))
    for name in splits:
        assert _summary(load_dialogues(tmp_path, name, strict=True)) == expected[name]


def test_hub_parquet_layout(tmp_path, splits, expected):
    """The Hub's converted layout: ``data/<split>-00000-of-00001.parquet``."""
    (tmp_path / "data").mkdir()
    for name, rows in splits.items():
        datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "data" / f"{name}-00000-of-00001.parquet"))
    assert _summary(load_dialogues(tmp_path, "dev", strict=True)) == expected["valid"]
    assert _summary(load_dialogues(tmp_path, "train", strict=True)) == expected["train"]


def test_damaged_parquet_is_a_counted_problem(tmp_path, splits):
    datasets.Dataset.from_list(splits["train"]).to_parquet(str(tmp_path / "train.parquet"))
    (tmp_path / "valid.parquet").write_bytes(b"PAR1 not really")
    from photodialog.data.load_report import LoadReport

    report = LoadReport()
    dialogues = load_dialogues(tmp_path, report=report)
    assert len(dialogues) == 2 and not report.ok
    assert "valid.parquet" in report.summary()


# --- PhotoChat++ (Lee et al., 2023: "Large Language Models can Share Images, Too!") -------
# Its Hub dataset (passing2961/photochat_plus, CC BY 4.0) is one file, photochat_plus.json, of
# 968 PhotoChat dialogues (ids 0-999): every PhotoChat field (dialogue_id as an int, dialogue,
# photo_description, photo_url, photo_id) plus the annotations trigger_sentences,
# image_descriptions, intents and salient_information (lists of strings). The fixture follows
# that documented schema with invented content.


def test_photochat_plus_reads_as_photochat(tmp_path):
    folder = FIXTURES / "photochat_plus"
    dialogues = load_dialogues(folder, strict=True)
    assert [d.dialogue_id for d in dialogues] == ["12", "501"]
    shared = [t for t in dialogues[0].turns if t.photos]
    assert len(shared) == 1 and shared[0].speaker == "0"
    photo = shared[0].photos[0]
    assert photo.caption == "The photo has your friend Mara. Objects in the photo: Woman, Bicycle"
    assert photo.photo_id == "test/00aa11bb22cc33dd" and photo.url.endswith("000000_aaaa_o.jpg")
    # No split in the file name: the file serves whichever split is asked for.
    assert len(load_dialogues(folder, "test", strict=True)) == 2


def test_photochat_plus_hub_parquet(tmp_path):
    """The Hub's converted copy (refs/convert/parquet): the same records through Arrow."""
    records = json.loads((FIXTURES / "photochat_plus" / "photochat_plus.json").read_text(encoding="utf-8"))
    (tmp_path / "data").mkdir()
    datasets.Dataset.from_list(records).to_parquet(str(tmp_path / "data" / "test-00000-of-00001.parquet"))
    expected = _summary(load_dialogues(FIXTURES / "photochat_plus", strict=True))
    assert _summary(load_dialogues(tmp_path, "test", strict=True)) == [(i, "test", t) for i, _, t in expected]


def test_hub_converted_parquet_branch_layout(tmp_path, splits, expected):
    """A download of the Hub's ``refs/convert/parquet`` branch: ``CONFIG/SPLIT/NNNN.parquet``."""
    for name, folder in (("train", "train"), ("valid", "partial-validation")):
        (tmp_path / "default" / folder).mkdir(parents=True)
        datasets.Dataset.from_list(splits[name]).to_parquet(str(tmp_path / "default" / folder / "0000.parquet"))
    assert _summary(load_dialogues(tmp_path, "dev", strict=True)) == expected["valid"]
    assert _summary(load_dialogues(tmp_path, "train", strict=True)) == expected["train"]
    assert _summary(load_dialogues(tmp_path / "default", "train", strict=True)) == expected["train"]  # the config folder too
    (tmp_path / "other" / "train").mkdir(parents=True)
    datasets.Dataset.from_list(splits["train"]).to_parquet(str(tmp_path / "other" / "train" / "0000.parquet"))
    from photodialog.errors import DataError

    with pytest.raises(DataError, match="several configurations \\(default, other\\); give one of them"):
        load_dialogues(tmp_path, "train", strict=True)


def test_no_dataset_files_names_the_layouts_it_reads(tmp_path):
    from photodialog.errors import DataError

    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(DataError, match="no dataset files") as err:
        load_dialogues(tmp_path, strict=True)
    for layout in ("*.parquet", "DIR/data/", "refs/convert/parquet", "DIR/CONFIG/{train,validation,test}/*.parquet", "save_to_disk"):
        assert layout in str(err.value)
