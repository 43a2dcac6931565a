"""Kind 3 of issue 18: output that cannot be written never loses the conversation.

The issue's inputs: ``chat`` with ``/save DIR`` (a folder), ``--save`` in a read-only place,
``--out`` that is a file or read-only, and ``eval --out`` in a read-only place. What must
happen: writability is checked before the work (before the model loads), the session stays
alive, the reply is printed, the message says what could not be written, and no temporary
file is left. The tests run as root, for whom a chmod-ed folder is still writable, so a
read-only place is a path under a regular file (the OS refuses it for everyone) or a write
that fails by monkeypatch (a full disk).
"""

from __future__ import annotations

import errno
import json

import pytest

from photodialog.cli.main import main
from photodialog.errors import UserError
from photodialog.output_files import writable_file, writable_folder
from photodialog.serving.session import ChatSession

from .helpers import FAST_FLAGS, DrawingEngine, leftovers, terminal_chat


@pytest.fixture
def blocker(tmp_path):
    """A regular file: every path under it is unwritable, for root too."""
    path = tmp_path / "a-file"
    path.write_text("not a folder\n")
    return path


@pytest.fixture
def fake_model(monkeypatch):
    """``chat`` with a stand-in engine; ``engine.calls`` says whether the model ran."""
    engine = DrawingEngine()
    monkeypatch.setattr("photodialog.cli.chat.load_engine", lambda args: engine)
    return engine


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


# ------------------------------------------------------------ the checks themselves


def test_writable_folder_refuses_a_path_under_a_file_and_a_read_only_one(blocker, tmp_path, monkeypatch):
    with pytest.raises(UserError, match="part of the path is a file"):
        writable_folder(blocker / "out", "--out")
    with pytest.raises(UserError, match="a file of that name is in the way|part of the path is a file"):
        writable_folder(blocker, "--out")
    monkeypatch.setattr("tempfile.mkstemp", lambda **kw: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only file system")))
    with pytest.raises(UserError, match=r"cannot write --out in .*: the file system is read-only"):
        writable_folder(tmp_path / "fine", "--out")


def test_a_check_without_create_leaves_nothing_behind(tmp_path):
    writable_folder(tmp_path / "not" / "yet", "--out", create=False)
    writable_file(tmp_path / "later" / "result.json", "--out", create=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_writable_file_refuses_a_folder(tmp_path):
    with pytest.raises(UserError, match="is a folder; give a file name"):
        writable_file(tmp_path, "--save")


# ------------------------------------------------------------ the terminal chat keeps going


def test_slash_save_to_a_folder_writes_a_new_file_in_it(tmp_path):
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "dialogue.json").write_text("someone else's\n")
    code, printed, _ = terminal_chat(ChatSession(tmp_path / "out"), ["hello", f"/save {folder}", "still there?"])
    assert code == 0 and "Traceback" not in printed
    assert (folder / "dialogue.json").read_text() == "someone else's\n"  # not replaced
    saved = json.loads((folder / "dialogue-002.json").read_text())
    assert saved[0]["dialogue"][0]["message"] == "hello"
    assert printed.count("bot> ") == 2  # the chat went on after the save


def test_slash_save_to_an_unwritable_place_says_so_and_the_chat_goes_on(tmp_path, blocker):
    session = ChatSession(tmp_path / "out")
    code, printed, engine = terminal_chat(session, ["hello", f"/save {blocker}/chat.json", "second message"])
    assert code == 0 and engine.calls == 2
    assert "error: could not save the dialogue" in printed
    assert "a file of that name is in the way of a folder" in printed
    assert "the conversation is kept" in printed
    assert [turn.text for turn in session.history][2] == "second message"
    assert leftovers(tmp_path) == []


def test_slash_save_on_a_full_disk_leaves_no_temporary_file(tmp_path, monkeypatch):
    session = ChatSession(tmp_path / "out")
    monkeypatch.setattr("os.replace", _full_disk)
    code, printed, _ = terminal_chat(session, ["hello", "/save", f"/save {tmp_path / 'x.json'}"])
    assert code == 0 and printed.count("no space left on the device") == 2
    assert leftovers(tmp_path) == [] and not (tmp_path / "x.json").exists()
    assert not (tmp_path / "out" / "dialogue.json").exists()  # the placeholder of the failed save is gone


def test_a_model_photo_that_cannot_be_written_keeps_the_reply(tmp_path, monkeypatch):
    session = ChatSession(tmp_path / "out")
    monkeypatch.setattr("photodialog.serving.session.new_file", _full_disk)
    code, printed, _ = terminal_chat(session, ["show me", "thanks"])
    assert code == 0 and "bot> look [IMG] a red car at the beach [/IMG]" in printed
    assert "warning: could not save the model's photo (a red car at the beach)" in printed
    assert "no space left on the device" in printed
    reply = session.history[1]
    assert reply.photos[0].caption == "a red car at the beach" and reply.photos[0].path is None
    assert session.history[2].text == "thanks" and len(session.history) == 4  # the chat went on


def test_a_user_photo_that_cannot_be_written_is_not_sent_and_stays_attached(tmp_path, monkeypatch):
    from PIL import Image

    photo = tmp_path / "cat.png"
    Image.new("RGB", (8, 8), (0, 0, 200)).save(photo)
    session = ChatSession(tmp_path / "out")
    monkeypatch.setattr("photodialog.serving.session.new_file", _full_disk)
    code, printed, engine = terminal_chat(session, [f"/photo {photo}", "my cat"])
    assert code == 0 and engine.calls == 0
    assert "error: could not save your photo" in printed and "the message was not sent" in printed
    assert session.history == []


# ------------------------------------------------------------ chat --message: checked before the model loads


def test_out_that_is_a_file_fails_before_the_model_loads(blocker, capsys, fake_model, tmp_path):
    code = main(["chat", "--checkpoint", str(tmp_path), "--out", str(blocker), *FAST_FLAGS, "--message", "hi"])
    assert code == 2 and fake_model.calls == 0
    assert "cannot write --out" in capsys.readouterr().err


def test_interactive_out_that_is_a_file_fails_before_the_model_loads(blocker, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("photodialog.cli.chat.load_engine", lambda args: pytest.fail("the model was loaded"))
    assert main(["chat", "--checkpoint", str(tmp_path), "--out", str(blocker / "sub"), *FAST_FLAGS]) == 2
    assert "part of the path is a file" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["under a file", "a folder"])
def test_save_in_an_unwritable_place_fails_before_the_model_loads(where, blocker, tmp_path, capsys, fake_model):
    save = blocker / "d.json" if where == "under a file" else tmp_path / "saved"
    if where == "a folder":
        save.mkdir()
    code = main(["chat", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "out"), *FAST_FLAGS,
                 "--message", "hi", "--save", str(save)])
    if where == "a folder":  # a folder is a place to save in: a new dialogue file there
        assert code == 0 and (save / "dialogue.json").is_file()
    else:
        assert code == 2 and fake_model.calls == 0 and "cannot write --save" in capsys.readouterr().err


def test_a_save_failing_after_the_reply_still_prints_the_reply(tmp_path, capsys, fake_model, monkeypatch):
    monkeypatch.setattr("photodialog.serving.session.write_dialogue", _full_disk)
    code = main(["chat", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "out"), *FAST_FLAGS,
                 "--message", "hi", "--save", str(tmp_path / "d.json"), "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and json.loads(out)["captions"] == [DrawingEngine.caption]
    assert "could not save the dialogue" in err and "no space left" in err
    assert leftovers(tmp_path) == []


def test_the_real_model_with_an_unwritable_save(tiny_run, tmp_path, blocker, capsys):
    code = main(["chat", "--checkpoint", str(tiny_run), "--out", str(tmp_path / "out"), *FAST_FLAGS,
                 "--message", "hello", "--save", str(blocker / "x" / "d.json")])
    assert code == 2 and "cannot write --save" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before anything was written


# ------------------------------------------------------------ eval --out


def test_eval_out_in_an_unwritable_place_fails_before_the_model_runs(tiny_run, tmp_path, blocker, capsys, monkeypatch):
    monkeypatch.setattr("photodialog.system.load_system", lambda *a, **k: pytest.fail("the model was loaded"))
    code = main(["eval", "--checkpoint", str(tiny_run), "--out", str(blocker / "eval" / "test.json"),
                 "--seeds", "0", "--max-samples", "2", "--no-progress"])
    assert code == 2
    assert "cannot write the eval result (--out)" in capsys.readouterr().err


def test_atomic_write_to_a_folder_leaves_no_temporary_file(tmp_path):
    from photodialog.files import write_text

    (tmp_path / "taken").mkdir()
    with pytest.raises(OSError):
        write_text(tmp_path / "taken", "x")
    assert leftovers(tmp_path) == []


def test_eval_compare_out_in_an_unwritable_place_is_a_message(blocker, capsys):
    assert main(["eval", "compare", "whatever.json", "--out", str(blocker / "table.md")]) == 2
    assert "cannot write --out" in capsys.readouterr().err
