"""Fixtures of the evaluation-loop tests: a world with a probe, evaluated runs, a tiny IS/FID extractor.

``eval_world`` is a copy of ``tiny_world`` with an *untrained* probe saved in ``probe/`` (random
but fixed weights: the probe metrics and the probe captioner run, in milliseconds). Evaluations
use few targets and 2 diffusion steps so that each takes seconds on a CPU.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from evalloop_helpers import FAST, FAST_FLAGS, MAX_SAMPLES, RUN_OVERRIDES, TINY_EXTRACTOR, save_untrained_probe


@pytest.fixture(scope="session")
def eval_world(tiny_world, tmp_path_factory):
    path = tmp_path_factory.mktemp("eval-world") / "world"
    shutil.copytree(tiny_world, path, ignore=shutil.ignore_patterns("probe"))
    save_untrained_probe(path)
    return path


@pytest.fixture(scope="session")
def e2e_eval(tiny_run, eval_world, tmp_path_factory):
    """The tiny end-to-end run evaluated on the first test targets with seeds 0 and 1."""
    from photodialog.evaluation.evaluate import EvalRequest, evaluate

    out = tmp_path_factory.mktemp("e2e-eval") / "test.json"
    request = EvalRequest(checkpoint=str(tiny_run), data=str(eval_world), seeds=[0, 1], out=str(out),
                          max_samples=MAX_SAMPLES, generation=dict(FAST), progress=False)
    return evaluate(request)


@pytest.fixture(scope="session")
def pipeline_run(eval_world, tmp_path_factory):
    """The tiny pipeline baseline: text part and image part, two steps each."""
    from photodialog.baselines.presets import baseline_recipes, train_baseline

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


@pytest.fixture(scope="session")
def tiny_extractor():
    """Registers a tiny offline stand-in for Inception with torch-fidelity; returns its name."""
    import torch_fidelity
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    class TinyExtractor(FeatureExtractorBase):
        """'pool' = mean colour of each image quadrant (12 numbers); 'logits' = a fixed projection (5 classes)."""

        def __init__(self, name, features_list, **kwargs):
            super().__init__(name, features_list)
            generator = torch.Generator().manual_seed(0)
            self.register_buffer("projection", torch.randn(12, 5, generator=generator) * 8.0)

        @staticmethod
        def get_provided_features_list():
            return "pool", "logits"

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return {"isc": "logits", "fid": "pool"}[metric]

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return torch.zeros(1, 3, 4, 4, dtype=torch.uint8)

        def forward(self, x):
            pool = torch.nn.functional.adaptive_avg_pool2d(x.float() / 255.0, 2).flatten(1)
            features = {"pool": pool, "logits": (pool - 0.5) @ self.projection}
            return tuple(features[name] for name in self.features_list)

    if TINY_EXTRACTOR not in FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(TINY_EXTRACTOR, TinyExtractor)
    return TINY_EXTRACTOR
