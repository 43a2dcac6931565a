"""Session fixtures shared by every test folder: a small synthetic world and a tiny trained run.

``tiny_world`` is a 60-dialogue world at 32 px; ``tiny_run`` trains the tiny end-to-end recipe
on it for two steps (a real run folder with a real checkpoint, in well under a minute).
"""

from __future__ import annotations

import os

import pytest

try:
    # rouge_score (used by the metric tests) imports absl, whose log handler keeps the stderr of
    # its import time (a pytest capture stream) and *closes* it when logging is reconfigured
    # (uvicorn does that when `serve` starts), which kills pytest's capture ("lost sys.stderr").
    # Give that handler a stream of its own.
    import absl.logging

    absl.logging.get_absl_handler().python_handler.stream = open(os.devnull, "w")  # noqa: SIM115
except ImportError:
    pass

TINY_EXTRACTOR = "photodialog-test-tiny"
TINY_CLASSES = 5

TINY_RUN_OVERRIDES = [
    "max_steps=2", "train.batch_size=4", "train.micro_batch_size=4", "train.eval_every_epochs=1000",
    "train.save_every_steps=1", "model.image_loss_repeats=1", "train.warmup_steps=1",
]


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    from photodialog.data.synth import write_world

    path = tmp_path_factory.mktemp("world") / "world"
    write_world(path, dialogues=60, seed=0, image_size=32, progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_run(tiny_world, tmp_path_factory):
    """A run folder of the tiny end-to-end recipe after two optimizer steps."""
    from photodialog.config import load_config
    from photodialog.training.trainer import Trainer

    run_dir = tmp_path_factory.mktemp("runs") / "tiny-e2e"
    config = load_config("tiny-e2e", [f"data.path={tiny_world}", *TINY_RUN_OVERRIDES])
    Trainer(config, run_dir, progress=False).run()
    return run_dir


@pytest.fixture(scope="session")
def tiny_extractor() -> str:
    """A tiny offline stand-in for Inception, registered with torch-fidelity once; its name.

    'pool' = the mean colour of each image quadrant (12 numbers, for FID); 'logits' = a fixed
    random projection of them (TINY_CLASSES classes, for IS). The registry is global.
    """
    import torch
    import torch_fidelity
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    class TinyFeatureExtractor(FeatureExtractorBase):
        NUM_CLASSES = TINY_CLASSES

        def __init__(self, name, features_list, **kwargs):
            super().__init__(name, features_list)
            generator = torch.Generator().manual_seed(0)
            self.register_buffer("projection", torch.randn(12, TINY_CLASSES, generator=generator) * 8.0)

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
            assert x.dtype == torch.uint8 and x.dim() == 4 and x.shape[1] == 3
            pool = torch.nn.functional.adaptive_avg_pool2d(x.float() / 255.0, 2).flatten(1)
            features = {"pool": pool, "logits": (pool - 0.5) @ self.projection}
            return tuple(features[name] for name in self.features_list)

    if TINY_EXTRACTOR not in FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(TINY_EXTRACTOR, TinyFeatureExtractor)
    return TINY_EXTRACTOR


@pytest.fixture
def consecutive_captions():
    """``make(llm_tokenizer, texts) -> (captions, rows)``: bridge captions laid out one after another
    as STGS rows, the way a batch's captions are."""
    from photodialog.models.bridge import CaptionTokens

    def make(llm_tok, texts):
        captions, row = [], 0
        for text in texts:
            ids = llm_tok(text, add_special_tokens=False).input_ids
            captions.append(CaptionTokens(rows=list(range(row, row + len(ids))), llm_ids=ids, text=text))
            row += len(ids)
        return captions, row

    return make


@pytest.fixture
def perceived(monkeypatch) -> list:
    """Records (perceptron, pixel batch) for every call of the image perceptron (serving and robustness tests)."""
    from photodialog.models.perceptron import ImagePerceptron

    calls: list = []
    original = ImagePerceptron.forward

    def forward(self, pixel_values):
        calls.append((self, pixel_values.detach().clone()))
        return original(self, pixel_values)

    monkeypatch.setattr(ImagePerceptron, "forward", forward)
    return calls
