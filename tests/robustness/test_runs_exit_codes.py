"""A run stopped on purpose (too many NaN/Inf steps) has its own documented exit code (issue 18 item 9)."""

from __future__ import annotations

from pathlib import Path

from photodialog.cli.main import EXIT_CODES_HELP, main
from photodialog.errors import RunStopped


def test_a_run_stopped_by_nan_steps_exits_4_not_the_bug_code(tmp_path, run_args, monkeypatch, capsys):
    from photodialog.models.dialogue_model import LossOutput, PhotoDialogModel

    real_forward = PhotoDialogModel.forward

    def always_nan(self, batch, **kwargs):
        out = real_forward(self, batch, **kwargs)
        return LossOutput(loss=out.loss * float("nan"), text_loss=out.text_loss, image_loss=out.image_loss, stats=out.stats)

    monkeypatch.setattr(PhotoDialogModel, "forward", always_nan)
    code = main(["train", *run_args("max_steps=5", "train.max_bad_steps_in_row=2"), "--output-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == RunStopped.exit_code == 4
    assert "NaN or Inf" in err and "Traceback" not in err


def test_help_and_readme_document_exit_code_4():
    assert "  4  a training run stopped on purpose" in EXIT_CODES_HELP
    from photodialog.cli.train import EPILOG

    assert "4 stopped on purpose" in " ".join(EPILOG.split())
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert "4 a training run stopped on purpose" in readme
