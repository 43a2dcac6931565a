"""`photodialog chat`: one reply as JSON, photos seen and saved, the terminal chat, bad input."""

from __future__ import annotations

import json

import pytest
import torch

from photodialog.cli.main import main
from photodialog.data.loading import load_dialogues
from photodialog.data.photos import load_photo

from .helpers import DRAWN_CAPTION, FAST_FLAGS


def _chat(tiny_run, out, *args):
    return main(["chat", "--checkpoint", str(tiny_run), "--out", str(out), *FAST_FLAGS, *args])


def _json_reply(capsys, code):
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def _perceived_photo(calls, photo) -> bool:
    """Whether some perceptron call was given exactly the pixels of ``photo``."""
    for perceptron, pixels in calls:
        expected = perceptron.preprocess([load_photo(photo)])
        if any(torch.equal(row, expected[0]) for row in pixels):
            return True
    return False


def test_json_reply_has_text_captions_and_photo_files(tiny_run, tmp_path, capsys, model_always_draws):
    out = tmp_path / "out"
    reply = _json_reply(capsys, _chat(tiny_run, out, "--message", "show me your car", "--json"))
    assert set(reply) == {"text", "captions", "photos"}
    assert isinstance(reply["text"], str) and reply["captions"] == [DRAWN_CAPTION]
    assert f"[IMG] {DRAWN_CAPTION} [/IMG]" in reply["text"]
    (photo,) = reply["photos"]
    assert photo.startswith(str(out.absolute())) and load_photo(photo).size[0] > 0


def test_an_attached_photo_is_perceived_and_copied_under_out(tiny_run, tmp_path, capsys, world_photo, perceived):
    out = tmp_path / "out"
    reply = _json_reply(capsys, _chat(tiny_run, out, "--message", "look", "--photo", str(world_photo), "--json", "--save", str(out / "d.json")))
    assert reply["photos"] == []  # the model did not draw (two training steps)
    assert _perceived_photo(perceived, world_photo)
    (copy,) = (out / "photos").glob("user-*.png")
    assert torch.equal(torch.tensor(list(load_photo(copy).getdata())), torch.tensor(list(load_photo(world_photo).getdata())))
    (dialogue,) = load_dialogues(out / "d.json")
    assert dialogue.turns[0].photos[0].path == str(copy.absolute())


def test_a_photo_in_the_history_is_perceived(tiny_run, tmp_path, capsys, world_photos, perceived):
    history = tmp_path / "history.jsonl"
    history.write_text(json.dumps({"speaker": "user", "text": "my photo", "photos": [str(world_photos[3])]}) + "\n"
                       + json.dumps({"speaker": "bot", "text": "nice"}) + "\n")
    _json_reply(capsys, _chat(tiny_run, tmp_path / "out", "--history", str(history), "--message", "what is it?", "--json"))
    assert _perceived_photo(perceived, world_photos[3])


def test_without_photos_nothing_is_perceived(tiny_run, tmp_path, capsys, perceived):
    _json_reply(capsys, _chat(tiny_run, tmp_path / "out", "--message", "hello", "--json"))
    assert perceived == []  # no photo in the message or the history: the perceptron is never called


def test_plain_output_prints_the_reply_and_photo_paths(tiny_run, tmp_path, capsys, model_always_draws):
    assert _chat(tiny_run, tmp_path / "out", "--message", "hi") == 0
    lines = capsys.readouterr().out.splitlines()
    assert DRAWN_CAPTION in lines[0]
    assert lines[1].startswith(f"[photo: {DRAWN_CAPTION}] saved to ") and lines[1].endswith("bot-001.png")


@pytest.mark.parametrize("args, complaint", [
    (["--message", "x", "--photo", "{bad}"], "'{bad}' cannot be used as a photo: it is not an image"),
    (["--message", "x", "--photo", "{cut}"], "truncated or corrupt"),
    (["--message", "x", "--photo", "missing.jpg"], "'missing.jpg' not found"),
    (["--message", "  "], "the message is empty"),
    (["--message", "x", "--history", "none.jsonl"], "history file not found"),
    (["--json"], "add --message TEXT to use --json"),
    (["--message", "x", "--diffusion-steps", "0"], "diffusion steps must be between"),
    (["--message", "x", "--decoding", "sample", "--temperature", "0"], "temperature must be above 0"),
    (["--message", "x", "--device", "nonsense"], "unknown device"),
])
def test_bad_input_is_a_clear_message_and_exit_code_2(tiny_run, tmp_path, capsys, not_an_image, truncated_photo, args, complaint):
    args = [a.format(bad=not_an_image, cut=truncated_photo) for a in args]
    complaint = complaint.format(bad=not_an_image)
    assert _chat(tiny_run, tmp_path / "out", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and complaint in err and "Traceback" not in err


def test_a_missing_checkpoint_is_a_clear_message(tmp_path, capsys):
    assert main(["chat", "--checkpoint", str(tmp_path / "nope"), "--message", "hi"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_the_terminal_chat(tiny_run, tmp_path, capsys, monkeypatch, world_photo, not_an_image, model_always_draws):
    out = tmp_path / "out"
    script = iter(["/help", "/frobnicate", f"/photo {not_an_image}", f"/photo {world_photo}", "look at this", "",
                   "//slash is text", f"/save {out / 'saved.json'}", "/reset", "/save", "/quit", "never read"])

    def typed(prompt):
        return next(script)

    monkeypatch.setattr("builtins.input", typed)
    assert _chat(tiny_run, out) == 0
    printed = capsys.readouterr().out
    assert "/photo PATH" in printed and "/quit" in printed  # /help
    assert "error: unknown command /frobnicate; type /help" in printed
    assert "not an image" in printed and f"attached {world_photo}" in printed
    assert printed.count(f"[photo: {DRAWN_CAPTION}] saved to {out.absolute() / 'photos'}") == 2
    assert f"saved the conversation (PhotoChat format) to {out / 'saved.json'}" in printed
    assert next(script) == "never read"  # /quit ended the chat

    (dialogue,) = load_dialogues(out / "saved.json")
    assert [t.speaker for t in dialogue.turns] == ["0", "1", "0", "1"]
    assert dialogue.turns[0].text == "look at this [IMG] a photo [/IMG]"
    assert dialogue.turns[2].text == "/slash is text"
    # After /reset the history is empty: nothing to save.
    assert "error: nothing to save yet" in printed and not (out / "dialogue.json").exists()


def test_the_terminal_chat_ends_at_end_of_input(tiny_run, tmp_path, monkeypatch):
    def typed(prompt):
        raise EOFError

    monkeypatch.setattr("builtins.input", typed)
    assert _chat(tiny_run, tmp_path / "out") == 0
