"""An eval writes only its own files, and a kill at any moment leaves the earlier result whole, or none:
the result JSON is written last, the new photos are swapped in as one folder."""

from __future__ import annotations

import json

from evalloop_helpers import FAST_FLAGS

from photodialog.cli.main import main
from photodialog.evaluation import eval_files
from photodialog.evaluation import runner
from photodialog.evaluation.eval_files import EvalPaths


def _eval(tiny_run, eval_world, out, *flags) -> int:
    return main(["eval", "--checkpoint", str(tiny_run), "--data", str(eval_world), "--seeds", "0", "--max-samples", "20",
                 "--out", str(out), *FAST_FLAGS, *flags])


def _named_photos_exist(paths: EvalPaths) -> bool:
    rows = [json.loads(line) for line in paths.predictions.read_text(encoding="utf-8").splitlines()]
    named = [photo for row in rows for photo in row.get("photos_by_seed", {}).values() if photo]
    return all((paths.folder / photo).is_file() for photo in named)


def test_files_beside_the_result_that_no_eval_wrote_are_refused_before_any_work(tiny_run, eval_world, tmp_path, capsys):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "results.md").write_text("# chapter 3, by hand\n")
    assert _eval(tiny_run, eval_world, thesis / "results.json") == 2
    err = capsys.readouterr().err
    assert "results.md exists and no eval of" in err and "give --out another name" in err
    assert sorted(p.name for p in thesis.iterdir()) == ["results.md"]
    assert (thesis / "results.md").read_text() == "# chapter 3, by hand\n"
    (tmp_path / "notes.json").write_text('{"budget": 1200}')  # a JSON that is not an eval result
    assert _eval(tiny_run, eval_world, tmp_path / "notes.json") == 2
    assert (tmp_path / "notes.json").read_text() == '{"budget": 1200}'


def test_a_rerun_killed_while_drawing_keeps_the_earlier_result_and_its_photos(tiny_run, eval_world, tmp_path, monkeypatch):
    out = tmp_path / "ev" / "test.json"
    assert _eval(tiny_run, eval_world, out) == 0
    paths = EvalPaths(out)
    before = {p: p.read_bytes() for p in (paths.json, paths.markdown, paths.predictions)}
    photos = sorted(p.relative_to(paths.photos) for p in paths.photos.rglob("*.png"))
    assert paths.finished() and _named_photos_exist(paths) and photos

    drawn = runner.iter_photos

    def killed_after_one(*args, **kwargs):
        for count, photo in enumerate(drawn(*args, **kwargs)):
            if count == 1:
                raise KeyboardInterrupt  # as a kill while the second photo is drawn (the first is saved)
            yield photo

    monkeypatch.setattr(runner, "iter_photos", killed_after_one)
    assert _eval(tiny_run, eval_world, out, "--diffusion-steps", "3") == 130
    assert {p: p.read_bytes() for p in before} == before  # the earlier result, whole
    assert sorted(p.relative_to(paths.photos) for p in paths.photos.rglob("*.png")) == photos and _named_photos_exist(paths)
    assert not paths.finished()  # ... but an interrupted eval of it is there: a rerun is due

    monkeypatch.setattr(runner, "iter_photos", drawn)
    monkeypatch.setattr(eval_files, "write_text", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))  # kill in the swap
    assert _eval(tiny_run, eval_world, out, "--diffusion-steps", "3") == 130
    assert not out.exists() and not paths.finished()  # no result claims photos it may not have

    monkeypatch.undo()
    assert _eval(tiny_run, eval_world, out, "--diffusion-steps", "3") == 0  # the rerun is not refused
    assert paths.finished() and _named_photos_exist(paths) and not paths.partial.exists()
    assert json.loads(out.read_text())["settings"]["diffusion_steps"] == 3


def test_photos_drawn_before_the_result_is_written_are_named_where_they_will_be(tmp_path):
    paths = EvalPaths(tmp_path / "test.json")
    assert paths.relative(paths.drawn_photos(0) / "00007.png") == "test-photos/seed-0/00007.png"
    assert paths.relative(paths.drawn_photos(1, gold_captions=True) / "00002.png") == "test-photos/seed-1-gold-captions/00002.png"
    assert paths.relative(paths.seed_photos(0) / "00007.png") == "test-photos/seed-0/00007.png"
