"""SECURITY: a sharding engine's checkpoint files (``engine/``) are read without unpickling code.

DeepSpeed reads its own checkpoint with ``torch.load(weights_only=False)``; on --resume the
trainer first reads every pickled file of ``engine/`` with ``weights_only=True`` (refusing one
that holds anything else, on every process) and makes DeepSpeed's reads the same. Here in one
process, on files of the same kinds; the runs of every engine are in test_sharded_engines.py.
"""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict

import pytest
import torch

from photodialog.training import engines

NEEDS_DEEPSPEED = pytest.mark.skipif(__import__("importlib").util.find_spec("deepspeed") is None, reason="needs the [deepspeed] extra")


class Payload:
    """Unpickling this creates ``marker``: what a hostile run folder would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def deepspeed_like_files(folder):
    """Files with what DeepSpeed ZeRO and Accelerate write: tensors, plain values, DeepSpeed's records, numpy states."""
    import numpy as np
    from deepspeed.runtime.fp16.loss_scaler import LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    (folder / "pytorch_model").mkdir(parents=True)
    model = {"module": OrderedDict(w=torch.arange(6.0).reshape(2, 3)), "param_shapes": [OrderedDict(w=torch.Size([2, 3]))],
             "global_steps": 3, "ds_config": {"zero_optimization": {"stage": 2}}, "ds_version": "0"}
    optim = {"optimizer_state_dict": {"loss_scaler": LossScaler(1.0), "zero_stage": ZeroStageEnum.gradients,
                                      "base_optimizer_state": {"state": {0: {"exp_avg": torch.ones(3)}}, "param_groups": [{"lr": 0.1}]},
                                      "param_slice_mappings": [OrderedDict(w=fragment_address(numel=6, start=0))]}}
    states = {"random_state": ("x", 1), "numpy_random_seed": np.random.get_state(), "torch_manual_seed": torch.get_rng_state()}
    paths = {"model": folder / "pytorch_model" / "mp_rank_00_model_states.pt",
             "optim": folder / "pytorch_model" / "zero_pp_rank_1_mp_rank_00_optim_states.pt",
             "random": folder / "random_states_1.pkl"}
    for key, value in (("model", model), ("optim", optim), ("random", states)):
        torch.save(value, paths[key])
    return paths


@NEEDS_DEEPSPEED
@pytest.mark.parametrize("kind", ["model", "optim", "random"])
def test_a_payload_in_any_deepspeed_file_is_refused_by_name_and_never_runs(tmp_path, kind):
    paths = deepspeed_like_files(tmp_path / "engine")
    allowed = engines.safe_types(engines.Engine("deepspeed-zero2", 2))
    assert engines.unsafe_file_problem(tmp_path / "engine", allowed) is None  # what DeepSpeed writes passes

    marker = tmp_path / "PAYLOAD-RAN"
    state = torch.load(paths[kind], weights_only=False)
    state["note"] = Payload(marker)
    torch.save(state, paths[kind])
    problem = engines.unsafe_file_problem(tmp_path / "engine", allowed)
    assert problem and str(paths[kind]) in problem and "could run code" in problem and "system" in problem
    assert not marker.exists()


def test_an_fsdp_shard_with_a_payload_is_refused(tmp_path):
    folder = tmp_path / "engine"
    folder.mkdir()
    torch.save({"state": {0: {"exp_avg": torch.ones(2)}}, "param_groups": []}, folder / "optimizer.rank0.pt")
    torch.save({"state": {}, "param_groups": [], "x": Payload(tmp_path / "PAYLOAD-RAN")}, folder / "optimizer.rank1.pt")
    problem = engines.unsafe_file_problem(folder, engines.safe_types(engines.Engine("fsdp", 2)))
    assert problem and "optimizer.rank1.pt" in problem and "could run code" in problem
    assert not (tmp_path / "PAYLOAD-RAN").exists()


def test_a_file_cut_short_is_named(tmp_path):
    torch.save({"state": {}, "param_groups": []}, tmp_path / "optimizer.rank0.pt")
    whole = (tmp_path / "optimizer.rank0.pt").read_bytes()
    (tmp_path / "optimizer.rank0.pt").write_bytes(whole[: len(whole) // 2])
    problem = engines.unsafe_file_problem(tmp_path, [])
    assert problem and "optimizer.rank0.pt cannot be read" in problem


@NEEDS_DEEPSPEED
def test_deepspeed_reads_its_checkpoint_weights_only_and_gets_the_same_objects(tmp_path):
    """DeepSpeed reads through its engine's checkpoint engine: in the context, with weights_only=True
    (the same tensors and records as its own unsafe read), and a payload is never built."""
    from deepspeed.runtime.checkpoint_engine.torch_checkpoint_engine import TorchCheckpointEngine

    paths = deepspeed_like_files(tmp_path / "engine")
    model = type("DeepSpeedEngineStandIn", (), {})()
    model.checkpoint_engine = TorchCheckpointEngine()
    allowed = engines.safe_types(engines.Engine("deepspeed-zero3", 2))
    with engines.deepspeed_reads_weights_only(model, allowed):
        ours = model.checkpoint_engine.load(str(paths["optim"]), map_location=lambda storage, loc: storage)
        theirs = torch.load(paths["optim"], weights_only=False)
        assert repr(ours) == repr(theirs)
        assert vars(ours["optimizer_state_dict"]["loss_scaler"]) == vars(theirs["optimizer_state_dict"]["loss_scaler"])
        marker = tmp_path / "PAYLOAD-RAN"
        state = torch.load(paths["model"], weights_only=False)
        state["note"] = Payload(marker)
        torch.save(state, paths["model"])
        with pytest.raises(pickle.UnpicklingError):
            model.checkpoint_engine.load(str(paths["model"]), map_location=None)
        assert not marker.exists()
    assert model.checkpoint_engine.load.__func__ is TorchCheckpointEngine.load  # DeepSpeed's own again after
