"""Sharding engines under Accelerate (FSDP, DeepSpeed ZeRO-2 and ZeRO-3): starting one on GPUs or CPU processes, and its checkpoint shards.

``photodialog train`` runs on one process, under DDP, under FSDP (FSDP2's ``fully_shard``) or
under DeepSpeed ZeRO-2 or ZeRO-3, as ``accelerate launch`` says (``configs/accelerate/``). Under
DDP and on one process every process holds whole weights and optimizer states, and a checkpoint is
the main process's copy. Under FSDP and DeepSpeed each process holds only a shard of the optimizer
state (and, under FSDP and ZeRO-3, of the weights), so a checkpoint also keeps what every process
holds: ``engine/`` in the checkpoint folder (FSDP: each process's shard of the AdamW state;
DeepSpeed: its own checkpoint through Accelerate's ``save_state``, ZeRO partitions per rank),
with each process's random generators (``save_engine_state``). ``--resume`` reads it back with ``load_state``, so the
resumed run repeats the uninterrupted one exactly, and without unpickling code: every pickled file
is read with ``weights_only=True`` (``load_engine_state``), DeepSpeed's own reads included.

Under ZeRO-3 the models are built whole on every process, outside ``deepspeed.zero.Init``
(``building_whole_models``), and ``prepare`` partitions them. A weight read outside its own
module's forward (the bridge reads the text encoder's token embedding) is gathered by ZeRO-3 for
the forward pass and registered with the model; the model's ``LossOutput`` is a dict of its loss
tensors, so ZeRO-3's hooks on it gather that weight again for the backward pass.

On a machine without a GPU, Accelerate 1.15 chooses FSDP only for GPU process groups and DeepSpeed
only when not told ``cpu``; ``accelerator_options`` starts a gloo process group without ``cpu``
and, for FSDP, marks the group so that Accelerate's own FSDP2 path runs on it (DeepSpeed then runs
on its CPU accelerator, ``DS_ACCELERATOR=cpu``, over gloo). This is how the tests run the three
engines on two CPU processes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from photodialog.errors import UserError
from photodialog import checkpoints as ckpt

ENGINE_STATE = "engine"  # the checkpoint's subfolder with every process's shard, in the engine's format
ENGINE_INFO = "engine.json"  # which engine on how many processes wrote a checkpoint


@dataclass(frozen=True)
class Engine:
    """How the processes of a run hold the model: ``name`` is ``single``, ``ddp``, ``fsdp``,
    ``deepspeed-zero2`` or ``deepspeed-zero3``; ``processes`` how many train together."""

    name: str
    processes: int

    @property
    def sharded(self) -> bool:
        """True when each process holds only a shard of the optimizer state (FSDP, DeepSpeed)."""
        return self.name == "fsdp" or self.name.startswith("deepspeed")

    @property
    def weights_in_engine_state(self) -> bool:
        """True when a checkpoint's ``engine/`` also holds the weights (DeepSpeed); under FSDP they
        come from ``trainable.safetensors`` and the base parts, before ``prepare``."""
        return self.name.startswith("deepspeed")

    @property
    def shards_weights(self) -> bool:
        """True when each process holds only a shard of every weight (FSDP): a forward pass is
        collective, so every process must take part in it (dev evaluation included)."""
        return self.name in ("fsdp", "deepspeed-zero3")

    def info(self) -> dict:
        """What ``engine.json`` records: ``{"engine": name, "processes": n}``."""
        return {"engine": self.name, "processes": self.processes}


def ignored_processes(environ=os.environ) -> str | None:
    """Why this process trains alone although its launch asked for several, or None.

    ``accelerate launch --cpu --num_processes N`` (or a config with ``use_cpu: true`` or
    ``distributed_type: MULTI_CPU``, without ``mpirun``) runs Accelerate's one-process launcher: it
    sets ``MASTER_ADDR`` for the N processes it asked for, but starts one and no ``WORLD_SIZE``.
    """
    launched_cpu = environ.get("ACCELERATE_USE_CPU", "").lower() == "true"
    if launched_cpu and environ.get("MASTER_ADDR") and int(environ.get("WORLD_SIZE", "1")) < 2:
        return ("accelerate launch asked for several processes but started one: with --cpu (or use_cpu: true, or "
                "distributed_type: MULTI_CPU without mpirun) Accelerate runs a single process. On CPUs, launch "
                "`accelerate launch --multi_gpu --num_processes N --num_machines 1 --mixed_precision no "
                "--dynamo_backend no -m photodialog train ...` (N gloo processes; docs/multi-gpu.md)")
    return None


def launch_info(engine: Engine, *, batch_size: int, micro_batch_size: int, accumulation: int, environ=os.environ) -> dict:
    """What a run records of its launch (``environment.json``'s ``launch``): engine, processes, the
    effective batch and how it is made, and a launch that asked for more processes than it runs."""
    info = {"engine": engine.name, "processes": engine.processes, "effective_batch": batch_size,
            "micro_batch_size": micro_batch_size, "accumulation": accumulation,
            "launcher": "accelerate launch" if any(k.startswith("ACCELERATE_") for k in environ) else "python"}
    ignored = ignored_processes(environ)
    if ignored:
        info["processes_requested_but_not_started"] = ignored
    return info


def _launched_with(name: str) -> bool:
    return os.environ.get(f"ACCELERATE_USE_{name}", "false").lower() == "true"


def accelerator_options() -> dict:
    """Keyword arguments for ``Accelerator`` (``cpu``, ``kwargs_handlers``) for this launch.

    On a machine with a GPU: Accelerate's defaults. Without one, under ``accelerate launch`` with
    FSDP or DeepSpeed on several processes: a gloo process group without ``cpu=True`` (with it,
    Accelerate would fall back to plain MULTI_CPU data parallelism), made here so that FSDP can be
    marked on it. Call once per process, before ``Accelerator``.
    """
    # the Hugging Face stack is slow to import: only training needs it
    from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs

    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)]
    sharded = _launched_with("FSDP") or _launched_with("DEEPSPEED")
    if torch.cuda.is_available() or not sharded or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return {"cpu": not torch.cuda.is_available(), "kwargs_handlers": handlers}
    if _launched_with("DEEPSPEED"):
        os.environ.setdefault("DS_ACCELERATOR", "cpu")  # DeepSpeed's CPU accelerator: gloo without oneCCL
    else:
        _mark_fsdp_on_cpu()
    return {"cpu": False, "kwargs_handlers": [*handlers, InitProcessGroupKwargs(backend="gloo")]}


def _mark_fsdp_on_cpu() -> None:
    """Accelerate turns ACCELERATE_USE_FSDP into FSDP only for GPU-like process groups
    (``AcceleratorState``: "distributed_type in [MULTI_GPU, ...]"); FSDP2's ``fully_shard`` itself
    runs on a CPU device mesh over gloo. Start the gloo group and let Accelerate see it as such."""
    # the Hugging Face stack is slow to import: only training needs it
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    state = PartialState(cpu=False, backend="gloo")
    if state.num_processes > 1 and state.device.type == "cpu":
        state.distributed_type = DistributedType.MULTI_GPU


def engine_of(accelerator) -> Engine:
    """The ``Engine`` an ``Accelerator`` runs under."""
    # the Hugging Face stack is slow to import: only training needs it
    from accelerate.utils import DistributedType

    kind, processes = accelerator.distributed_type, accelerator.num_processes
    if kind == DistributedType.FSDP:
        return Engine("fsdp", processes)
    if kind == DistributedType.DEEPSPEED:
        stage = accelerator.state.deepspeed_plugin.deepspeed_config.get("zero_optimization", {}).get("stage", 0)
        return Engine(f"deepspeed-zero{stage}", processes)
    return Engine("ddp" if processes > 1 else "single", processes)


@contextlib.contextmanager
def building_whole_models(accelerator):
    """Build models with whole weights on every process, also under DeepSpeed ZeRO-3.

    Accelerate 1.15 registers its DeepSpeed config with transformers whatever ``zero3_init_flag``
    says (``DeepSpeedPlugin.set_deepspeed_weakref``); under ZeRO-3 every ``from_config`` and
    ``from_pretrained`` then runs in ``deepspeed.zero.Init``, a collective that partitions each
    weight as it is made. The tiny preset's base parts are built by the main process alone (the
    others would wait forever), and the trainer loads weights into whole tensors. So the config is
    taken away from transformers while models are built and given back after; ``prepare`` then
    partitions the whole model. No-op under every other engine.
    """
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None or engine_of(accelerator).name != "deepspeed-zero3":
        yield
        return
    # the Hugging Face stack is slow to import: only ZeRO-3 runs need it
    from transformers.integrations.deepspeed import set_hf_deepspeed_config, unset_hf_deepspeed_config

    unset_hf_deepspeed_config()
    try:
        yield
    finally:
        if getattr(plugin, "dschf", None) is not None:
            set_hf_deepspeed_config(plugin.dschf)


def configure_deepspeed(accelerator, *, micro_batch: int, accumulation: int, grad_clip: float) -> None:
    """Give DeepSpeed the run's batch arithmetic before ``prepare``: ``micro_batch`` samples per
    process and micro-step, ``accumulation`` micro-steps per optimizer step (so the effective batch,
    ``train.batch_size``, is the same under every engine), and ``train.grad_clip`` (0: none)."""
    config = accelerator.state.deepspeed_plugin.deepspeed_config
    config["train_micro_batch_size_per_gpu"] = micro_batch
    config["gradient_accumulation_steps"] = accumulation
    config["train_batch_size"] = micro_batch * accumulation * accelerator.num_processes
    config["gradient_clipping"] = grad_clip
    config["zero_allow_untested_optimizer"] = True  # photodialog's AdamW (torch's) is not DeepSpeed's own
    accelerator.gradient_accumulation_steps = accumulation


def save_engine_state(accelerator, engine: Engine, optimizer, folder: Path) -> None:
    """Every process writes its shard of the optimizer state and its random generators to
    ``folder/engine/``; collective: every process calls it. ``folder`` must exist.

    FSDP: ``optimizer.rank<R>.pt``, this process's shard of every AdamW state (the local tensors of
    the DTensors, torch.save, read back with ``weights_only=True``) and ``rng.rank<R>.json``; the
    weights are the whole ``trainable.safetensors`` (float32: exact) and the base parts. Not
    Accelerate's DCP optimizer checkpoint: its loader expects a state for every parameter, and a
    part without a gradient so far (the perceptron in a batch without context photos) has none
    ("Missing key in checkpoint state_dict: optimizer.state.perceptron.query_tokens.step"), while
    giving it one changes AdamW's step count. DeepSpeed: Accelerate's ``save_state``, DeepSpeed's own
    checkpoint (``pytorch_model/``: ZeRO partitions per rank, frozen weights left out) and
    ``random_states_<R>.pkl``.
    """
    target = folder / ENGINE_STATE
    if engine.name == "fsdp":
        target.mkdir(exist_ok=True)
        rank = accelerator.process_index
        torch.save(_local_optimizer_state(optimizer), target / f"optimizer.rank{rank}.pt")
        (target / f"rng.rank{rank}.json").write_text(json.dumps(ckpt.rng_state()), encoding="utf-8")
    else:
        accelerator.save_state(str(target), exclude_frozen_parameters=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (target / ENGINE_INFO).write_text(json.dumps(engine.info()), encoding="utf-8")
    accelerator.wait_for_everyone()


def _local_optimizer_state(optimizer) -> dict:
    """``optimizer.state_dict()`` with every DTensor replaced by this process's shard of it."""
    state = optimizer.state_dict()
    return {"state": {index: {key: _local(value) for key, value in entry.items()} for index, entry in state["state"].items()},
            "param_groups": state["param_groups"]}


def _local(value):
    # imports torch.distributed's DTensor: only FSDP runs need it
    from torch.distributed.tensor import DTensor

    return value.to_local().clone() if isinstance(value, DTensor) else value


def check_resumable(folder: Path, engine: Engine) -> None:
    """Raise ``UserError`` unless checkpoint ``folder`` can be resumed under ``engine``: a sharded
    engine needs the checkpoint of the same engine on as many processes; DDP or one process needs a
    checkpoint with a whole optimizer state (``optimizer.pt``)."""
    info_path = folder / ENGINE_STATE / ENGINE_INFO
    saved = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else None
    written = f"{saved['engine']} on {saved['processes']} process(es)" if saved else "without a sharding engine (one process or DDP)"
    if engine.sharded and saved != engine.info():
        raise UserError(f"{folder} was written {written}; this run is {engine.name} on {engine.processes} process(es). "
                        f"Resume it under the accelerate config and process count that wrote it (or start a new --out)")
    if not engine.sharded and saved is not None:
        raise UserError(f"{folder} was written {written}: its optimizer state is sharded in {folder / ENGINE_STATE}. "
                        f"Resume it under that accelerate config and process count (or start a new --out)")


def load_engine_state(accelerator, engine: Engine, model, optimizer, folder: Path) -> None:
    """Every process reads back its shard of the optimizer state and its random generators from
    ``folder/engine/`` (after ``prepare``, ``model`` and ``optimizer`` as it returned them; under
    DeepSpeed the weights too); collective.

    Nothing read can run code: every pickled file of ``engine/`` is first read by every process
    with ``torch.load(weights_only=True)`` (tensors, plain values and ``safe_types``), and one that
    holds anything else is refused on every process before anything is loaded. DeepSpeed's own
    reads (``weights_only=False``) are then made the same way (``deepspeed_reads_weights_only``).
    Raises ``UserError`` when a file is refused or cannot be read.
    """
    target = folder / ENGINE_STATE
    allowed = safe_types(engine)
    problems = _shared_problems(accelerator, unsafe_file_problem(target, allowed))
    if problems:
        raise UserError(f"{problems[0]}. Use a checkpoint you trust (or start afresh with another --out)")
    if engine.name != "fsdp":
        with deepspeed_reads_weights_only(model, allowed):
            accelerator.load_state(str(target), load_module_strict=False)  # frozen weights were left out
        return
    rank = accelerator.process_index
    path = target / f"optimizer.rank{rank}.pt"
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        generators = json.loads((target / f"rng.rank{rank}.json").read_text(encoding="utf-8"))
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as err:
        raise UserError(f"{target} cannot be read on process {rank} ({err}); use another checkpoint of the run") from None
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, entry in saved["state"].items():
        param = params[int(index)]
        for key, value in entry.items():
            if key != "step" and _is_dtensor(param) and value.dim() > 0:
                entry[key] = _sharded_like(value, param)
    optimizer.load_state_dict(saved)
    ckpt.restore_rng(generators)


PICKLED = (".pt", ".pkl", ".bin")  # what torch.save writes in engine/ (DeepSpeed, Accelerate, FSDP shards)


def safe_types(engine: Engine) -> list:
    """The classes besides tensors and plain values that ``engine``'s checkpoint files may hold:
    the numpy arrays of Accelerate's random states and, under DeepSpeed, the records its ZeRO
    checkpoints pickle (the ZeRO stage, the loss scaler's settings, where each weight's slice lies).
    Unpickling them builds plain records and runs none of the file's code; anything else is refused."""
    # the Hugging Face stack is slow to import: only resuming a sharded run needs it
    from accelerate.utils.other import TORCH_SAFE_GLOBALS

    allowed = list(TORCH_SAFE_GLOBALS)
    if engine.weights_in_engine_state:
        # DeepSpeed is optional and slow to import: only DeepSpeed runs need it
        from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
        from deepspeed.runtime.zero.config import ZeroStageEnum
        from deepspeed.utils.tensor_fragment import fragment_address

        allowed += [ZeroStageEnum, LossScaler, DynamicLossScaler, fragment_address]
    return allowed


def weights_only_load(path, map_location=None, *, allowed: list):
    """``torch.load(path)`` that unpickles tensors, plain values and the ``allowed`` classes only;
    ``pickle.UnpicklingError`` for anything else (nothing of it is built or run)."""
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location=map_location, weights_only=True)


def unsafe_file_problem(target: Path, allowed: list) -> str | None:
    """Why a pickled file under ``target`` (an ``engine/`` folder) must not be loaded, or None:
    it holds more than tensors, plain values and ``allowed`` classes, or cannot be read. Each file
    is read with ``weights_only=True``, memory-mapped where it can be, so its tensors stay on disk."""
    for path in sorted(p for p in target.rglob("*") if p.suffix in PICKLED and p.is_file()):
        try:
            with torch.serialization.safe_globals(allowed):
                torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
        except pickle.UnpicklingError as err:  # what weights_only=True raises for anything else
            return ckpt.refusal(path, err)
        except (OSError, RuntimeError, ValueError, EOFError) as err:
            return f"{path} cannot be read ({str(err).splitlines()[0] if str(err) else err.__class__.__name__})"
    return None


def _shared_problems(accelerator, problem: str | None) -> list[str]:
    """Every process's ``problem`` (None left out), on every process: a file one process refuses
    must stop all of them, or the others would wait for it in the next collective."""
    if accelerator.num_processes == 1:
        return [problem] if problem else []
    # the Hugging Face stack is slow to import: only training needs it
    from accelerate.utils import gather_object

    return [each for each in gather_object([problem]) if each]


@contextlib.contextmanager
def deepspeed_reads_weights_only(model, allowed: list):
    """While in the context, DeepSpeed reads ``model``'s checkpoint (model states, ZeRO partitions)
    with ``weights_only_load`` instead of its ``torch.load(weights_only=False)``. DeepSpeed reads
    every file through the engine's checkpoint engine (``TorchCheckpointEngine.load``); what it gets
    back is the same tensors and records, so the resumed run is the same. No-op for a model without one."""
    reader = getattr(model, "checkpoint_engine", None)
    if reader is None:
        yield
        return
    reader.load = functools.partial(weights_only_load, allowed=allowed)
    try:
        yield
    finally:
        del reader.load  # the class's own method again


def _is_dtensor(value) -> bool:
    # imports torch.distributed's DTensor: only FSDP runs need it
    from torch.distributed.tensor import DTensor

    return isinstance(value, DTensor)


def _sharded_like(local: torch.Tensor, param):
    """A DTensor of ``param``'s layout whose shard on this process is ``local``."""
    # imports torch.distributed's DTensor: only FSDP runs need it
    from torch.distributed.tensor import DTensor

    return DTensor.from_local(local.to(param.device), param.device_mesh, param.placements, run_check=False,
                              shape=param.shape, stride=param.stride())
