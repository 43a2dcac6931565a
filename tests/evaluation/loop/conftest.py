"""Fixtures of the evaluation-loop tests: a world with a probe and evaluated runs.

``eval_world`` is a copy of ``tiny_world`` with an *untrained* probe saved in ``probe/`` (random
but fixed weights: the probe metrics and the probe captioner run, in milliseconds). Evaluations
use few targets and 2 diffusion steps so that each takes seconds on a CPU.
"""

from __future__ import annotations

import shutil

import pytest

from evalloop_helpers import FAST, FAST_FLAGS, MAX_SAMPLES, RUN_OVERRIDES, recording_replies, save_untrained_probe


@pytest.fixture(scope="session")
def eval_world(tiny_world, tmp_path_factory):
    path = tmp_path_factory.mktemp("eval-world") / "world"
    shutil.copytree(tiny_world, path, ignore=shutil.ignore_patterns("probe"))
    save_untrained_probe(path)
    return path


@pytest.fixture(scope="session")
def e2e_reply_calls():
    """The settings of every ``generate_replies`` call ``e2e_eval`` made, in order."""
    return []


@pytest.fixture(scope="session")
def e2e_eval(tiny_run, eval_world, e2e_reply_calls, tmp_path_factory):
    """The tiny end-to-end run evaluated on the first test targets with seeds 0 and 1."""
    from photodialog.evaluation import evaluate as evaluate_module
    from photodialog.evaluation.evaluate import evaluate
    from photodialog.evaluation.eval_files import EvalRequest

    out = tmp_path_factory.mktemp("e2e-eval") / "test.json"
    request = EvalRequest(checkpoint=str(tiny_run), data=str(eval_world), seeds=[0, 1], out=str(out),
                          max_samples=MAX_SAMPLES, generation=dict(FAST), progress=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate_module, "generate_replies", recording_replies(e2e_reply_calls))
        return evaluate(request)


@pytest.fixture(scope="session")
def pipeline_run(eval_world, tmp_path_factory):
    """The tiny pipeline baseline: text part and image part, two steps each."""
    from photodialog.training.baselines import baseline_recipes, train_baseline

    out = tmp_path_factory.mktemp("runs") / "tiny-pipeline"
    return train_baseline(baseline_recipes("pipeline"), out, [f"data.path={eval_world}", *RUN_OVERRIDES], progress=False)


@pytest.fixture(scope="session")
def pipeline_eval(pipeline_run, eval_world, tmp_path_factory):
    """The tiny pipeline evaluated through `photodialog eval` (the image part's run); the result JSON."""
    from photodialog.cli.main import main

    out = tmp_path_factory.mktemp("pipeline-eval") / "test.json"
    code = main(["eval", "--checkpoint", str(pipeline_run.image_dir), "--data", str(eval_world), "--seeds", "0,1",
                 "--max-samples", str(MAX_SAMPLES), "--out", str(out), *FAST_FLAGS])
    assert code == 0
    return out
