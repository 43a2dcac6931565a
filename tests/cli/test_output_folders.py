"""Where commands write: --out "" is refused by every command; a folder is a command's own (its owner file)."""

from __future__ import annotations

import pytest

from photodialog.cli.main import main
from photodialog.errors import UserError
from photodialog.output_files import OWNER_FILE, claim_folder, folder_owner, lock_folder


def test_an_empty_out_is_refused_by_every_command(capsys):
    for command in (["train", "--config", "tiny-e2e"], ["demo"], ["serve", "--checkpoint", "x"], ["eval", "--checkpoint", "x"],
                    ["data", "synth"], ["data", "probe", "w"], ["data", "download", "photochat"], ["bench", "bridge"],
                    ["export", "--checkpoint", "x"], ["chat", "--checkpoint", "x"]):
        try:
            main([*command, "--out", ""])
        except SystemExit as stop:
            assert stop.code == 2, command
        assert "--out: is empty" in capsys.readouterr().err, command


def test_a_command_claims_a_new_or_empty_folder_and_only_its_own_afterwards(tmp_path):
    claim_folder(tmp_path / "new", "demo")
    assert folder_owner(tmp_path / "new") == "demo" and (tmp_path / "new" / OWNER_FILE).is_file()
    (tmp_path / "new" / "report.md").write_text("the demo's")
    claim_folder(tmp_path / "new", "demo")  # its own folder, again (a rerun resumes)
    with pytest.raises(UserError, match="made by `photodialog demo`"):
        claim_folder(tmp_path / "new", "serve")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("the user's")
    with pytest.raises(UserError, match="not made by `photodialog demo`"):
        claim_folder(mine, "demo")
    assert sorted(p.name for p in mine.iterdir()) == ["report.md"]  # nothing written into it
    claim_folder(mine, "demo", made_before=lambda folder: (folder / "report.md").is_file())  # a folder of an older version


def test_a_locked_folder_is_refused_until_its_holder_lets_go(tmp_path):
    with lock_folder(tmp_path, "the run folder"):
        with pytest.raises(UserError, match=r"the run folder .* is being written by pid \d+ on host"):
            lock_folder(tmp_path, "the run folder")
    lock_folder(tmp_path, "the run folder").release()


def test_bench_refuses_to_replace_a_file_that_is_not_a_bench_result(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    with pytest.raises(SystemExit) as stop:
        main(["bench", "startup", "--out", str(notes)])
    assert stop.value.code == 2 and "is not the JSON result of a bench" in capsys.readouterr().err
    assert notes.read_text() == "my notes"
