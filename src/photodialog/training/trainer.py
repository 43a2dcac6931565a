"""`photodialog train`: one loop for every model and dataset, on one process or many (Accelerate).

Order, as in diffusers' training scripts: Accelerator -> load data -> build and freeze the model
-> prepare -> loop. Each optimizer step accumulates micro-batches up to the effective batch;
a non-finite loss skips the step (warning, counter) and too many in a row stop the run with the
last checkpoint intact. Checkpoints hold only what trains and are written atomically; with
``--resume`` a run continues from its latest one and ends exactly where an uninterrupted run
would (same seed, same data order, same RNG states).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from photodialog import checkpoints as ckpt
from photodialog.checkpoints import (
    EMA_WEIGHTS,
    TrainState,
    best_checkpoint,
    checkpoint_dir,
    checkpoint_problem,
    list_checkpoints,
    load_trainable,
    read_state,
    read_weights,
    resolve_checkpoint,
    step_folders,
)
from photodialog.config import RunConfig, load_config, save_config
from photodialog.data.load_report import PHOTO_LINK_OUTSIDE, UNREADABLE_PHOTO
from photodialog.data.samples import build_samples
from photodialog.data.schema import Sample
from photodialog.errors import DataError, RunStopped, UserError
from photodialog.files import write_text
from photodialog.models.dialogue_model import OPTIONAL_PARTS
from photodialog.output_files import claim_folder, folder_is_locked, lock_folder
from photodialog.system import build_system
from photodialog.training import engines
from photodialog.training.data import epoch_order, load_split, tokenizer_texts, training_dataset, training_photos
from photodialog.training.dev_eval import dev_competence, dev_selection, dev_set
from photodialog.training.ema import WeightAverage
from photodialog.training.run_files import MetricsLog, attach_log_file, read_metrics, run_folder_problem, write_environment
from photodialog.training.schedules import tau_at, warmup_then_constant
from photodialog.training.micro_batch import choose_on_cuda, fixed_micro_batch
from photodialog.training.speed import adamw, setup_for_speed

log = logging.getLogger("photodialog.train")


class TrainingStopped(RunStopped):
    """The run stopped on purpose (too many bad steps); the last checkpoint is intact (exit code 4)."""


@dataclass
class TrainResult:
    """How a run ended: its folder, the last optimizer step, the last loss, why it stopped, and the best checkpoint."""

    run_dir: Path
    step: int
    last_loss: float | None
    stop_reason: str
    best_checkpoint: Path | None


class Trainer:
    """``photodialog train``: one run of a recipe on one process or many (Accelerate).

    Builds the system, trains with gradient accumulation to ``train.batch_size``, anneals tau,
    evaluates on dev (best checkpoint, early stopping), saves resumable atomic checkpoints and
    logs metrics. ``resume`` continues the run in ``run_dir`` from its latest checkpoint.
    """

    def __init__(self, config: RunConfig, run_dir: str | Path, *, resume: bool = False, progress: bool = True):
        # the Hugging Face stack is slow to import: only this path needs it
        from accelerate import Accelerator

        self.config, self.run_dir, self.resume = config, Path(run_dir), resume
        # DDP, FSDP or DeepSpeed as `accelerate launch` says, on GPUs or on CPU processes (gloo)
        self.accelerator = Accelerator(mixed_precision=self._mixed_precision(), **engines.accelerator_options())
        self.engine = engines.engine_of(self.accelerator)
        self.main = self.accelerator.is_main_process
        self.progress = progress and self.main
        world, micro = self.accelerator.num_processes, config.train.micro_batch_size
        self._auto_micro = micro == "auto"
        if self._auto_micro:  # the CPU rule now; on a GPU chosen again from free memory once the model is built
            micro = config.train.micro_batch_size = fixed_micro_batch(config, world)
        if config.train.batch_size % (micro * world):
            raise UserError(
                f"train.batch_size ({config.train.batch_size}) must be a multiple of micro_batch_size x processes "
                f"({micro} x {world}); change one of them"
            )
        self.accumulation = config.train.batch_size // (micro * world)
        self.accelerator.gradient_accumulation_steps = self.accumulation
        if config.train.grad_clip_per_part and self.engine.name not in ("single", "ddp"):
            raise UserError(f"train.grad_clip_per_part works with one process or DDP; under {self.engine.name} the engine "
                            "clips one norm over all parameters. Set train.grad_clip_per_part=false or launch without it")

    def _log_launch(self) -> None:
        """Say how this run trains (in train.log too), and when its launch started fewer processes than it asked for."""
        info = self.launch_info()
        log.info("engine %s on %d process(es); effective batch %d = micro-batch %s x %d process(es) x %d accumulation",
                 info["engine"], info["processes"], info["effective_batch"], info["micro_batch_size"], info["processes"],
                 info["accumulation"])
        if "processes_requested_but_not_started" in info:
            log.warning("%s", info["processes_requested_but_not_started"])

    def _micro_batch_from_memory(self, model, dataset) -> None:
        """``train.micro_batch_size=auto`` on a GPU: probe two small steps, fit the largest micro-batch in free
        memory (``training/micro_batch.py``; every process takes the smallest choice) and record it in config.yaml."""
        t, world, device = self.config.train, self.accelerator.num_processes, self.accelerator.device
        model.to(device).train()

        def probe(batch):
            with self.accelerator.autocast():
                out = model(batch, tau=t.tau_start, alpha=t.alpha, text_weight=t.text_loss_weight)
            out.loss.backward()

        choice = choose_on_cuda(model, self.system.make_batch, dataset, t.batch_size // world, device, probe, seed=t.seed)
        size = int(self.accelerator.gather(torch.tensor([choice.size], device=device)).min()) if world > 1 else choice.size
        t.micro_batch_size = size
        self.accumulation = t.batch_size // (size * world)
        self.accelerator.gradient_accumulation_steps = self.accumulation
        if self.main:
            log.info("train.micro_batch_size=auto: %d (%s; %s)", size, choice.rule, choice.details)
            save_config(self.config, self.run_dir / "config.yaml")
            write_environment(self.run_dir, self.launch_info())

    def _mixed_precision(self) -> str:
        wanted = self.config.train.mixed_precision
        if wanted == "auto":
            return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
        if wanted != "no" and not torch.cuda.is_available():
            log.warning("mixed_precision=%s needs a GPU; training in float32 on the CPU", wanted)
            return "no"
        return wanted

    # ------------------------------------------------------------ setup

    def _check_data_path(self) -> None:
        data_path = self.config.data.path
        if not data_path:
            raise UserError("data.path is not set: give the dataset folder in the recipe or as data.path=DIR")
        if not Path(data_path).exists():
            raise UserError(f"data.path '{data_path}' does not exist; make a world with `photodialog data synth --out {data_path}`")

    def _prepare_run_dir(self) -> None:
        text_from = self.config.model.text_from
        if text_from:
            # Stored absolute, so eval/chat find the text part from any working folder.
            path = Path(text_from).expanduser().resolve()
            resolve_checkpoint(path)  # the text part must be trained first: fail before any work
            self.config.model.text_from = str(path)
        # Every process checks (and refuses alike) before the main one writes anything.
        problem = run_folder_problem(self.run_dir)
        if problem:
            raise UserError(problem)
        existing = step_folders(self.run_dir)  # broken ones too: never overwritten without --resume
        if existing and not self.resume:
            raise UserError(f"{self.run_dir} already holds checkpoints; pass --resume to continue it, or choose another --out")
        if folder_is_locked(self.run_dir):
            lock_folder(self.run_dir, "the run folder")  # raises, naming the trainer that holds it
        self.accelerator.wait_for_everyone()
        if self.main:
            claim_folder(self.run_dir, "train", made_before=lambda _: True)  # checked above
            # Held for the run's life (dropped by the kernel if the process dies): a second trainer is refused.
            self._lock = lock_folder(self.run_dir, "the run folder")
            save_config(self.config, self.run_dir / "config.yaml")
            write_environment(self.run_dir, self.launch_info())
        self.accelerator.wait_for_everyone()

    def launch_info(self) -> dict:
        """The engine, processes and effective batch of this run (logged, and in ``environment.json``)."""
        t = self.config.train
        return engines.launch_info(self.engine, batch_size=t.batch_size, micro_batch_size=t.micro_batch_size,
                                   accumulation=self.accumulation)

    def _load_data(self):
        cfg = self.config
        train, report = load_split(cfg.data, cfg.data.train_split, self.progress)
        if not report.ok and self.main:
            log.warning("training data: %s", report.summary())
        samples = build_samples(train)
        if "llm" not in cfg.model.parts:
            # A generator trained alone learns from every shared photo and its caption, the first
            # turn's too (a dialogue may open with its photo, which is never a reply target).
            samples = [Sample(d.dialogue_id, i, d.turns[:i], turn) for d in train for i, turn in enumerate(d.turns)
                       if turn.shares_photo]
        elif cfg.data.only_photo_turns:
            samples = [s for s in samples if s.response.shares_photo]
        self._check_photos_to_learn_from(samples, report)
        dev_samples = []
        try:
            dev, _ = load_split(cfg.data, cfg.data.dev_split, self.progress)
            dev_samples = build_samples(dev)
        except UserError as err:
            log.warning("no dev split (%s): no dev score, so no early stopping; the last checkpoint counts as the best", err)
        return train, samples, dev_samples

    def _check_photos_to_learn_from(self, samples, report) -> None:
        """Refuse a run whose image side would train on no photo at all (every file unreadable or
        missing): it would finish with exit 0 and an untrained generator or perceptron."""
        parts, train = self.config.model.parts, self.config.model.trainable
        sides = []
        if "generator" in parts and train.unet != "frozen":
            sides.append(("the image generator", "target photos of responses",
                          [p for s in samples for p in s.response.photos]))
        if "perceptron" in parts and train.perceptron != "frozen" and self.config.model.context_photos == "pixels":
            sides.append(("the image perceptron", "context photos", [p for s in samples for turn in s.context for p in turn.photos]))
        skipped = report.counts.get(UNREADABLE_PHOTO, 0) + report.counts.get(PHOTO_LINK_OUTSIDE, 0)
        for name, what, photos in sides:
            if photos and not any(p.path for p in photos):
                raise DataError(
                    f"{name} has nothing to learn from: none of the {len(photos)} {what} in the train split of "
                    f"{self.config.data.path} has a readable file ({skipped} photo file(s) unreadable or refused; "
                    f"run `photodialog data check {self.config.data.path}`). Fix the photos, or freeze that part "
                    f"(model.trainable.*=frozen) or drop it from model.parts"
                )
        if skipped and self.main:
            log.warning("training without %d photo file(s) that could not be used (unreadable, or links out of the "
                        "dataset); `photodialog data check %s` lists them", skipped, self.config.data.path)

    def _build(self):
        train_dialogues, samples, dev_samples = self._load_data()
        texts, photos = tokenizer_texts(train_dialogues), training_photos(train_dialogues)
        with engines.building_whole_models(self.accelerator):  # ZeRO-3: not in zero.Init (prepare partitions)
            if self.main and self.config.model.preset == "tiny":
                build_system(self.config, self.run_dir, texts, photos, progress=self.progress)  # creates base/ once
            self.accelerator.wait_for_everyone()
            system = build_system(self.config, self.run_dir, texts, photos)
        dataset = training_dataset(samples, system.formatter)
        self._check_one_step_fits(len(dataset))
        self.dev_samples = dev_samples
        return system, dataset, dev_set(system, dev_samples, self.config)

    def _check_one_step_fits(self, samples: int) -> None:
        """An optimizer step takes train.batch_size samples; with fewer, no step could ever run."""
        batch_size = self.config.train.batch_size
        if samples < batch_size:
            raise UserError(
                f"only {samples} training samples in {self.config.data.path}, fewer than one optimizer step "
                f"(train.batch_size={batch_size}); lower train.batch_size (and micro_batch_size) or use more data"
            )

    def _optimizer(self, model):
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise UserError("nothing trains: every part is frozen (set model.trainable.<part>=full or lora)")
        t = self.config.train
        optimizer = adamw(params, lr=t.lr, weight_decay=t.weight_decay, device=self.accelerator.device)  # fused on CUDA
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_then_constant(t.warmup_steps))
        return optimizer, scheduler

    # ------------------------------------------------------------ loop

    def run(self) -> TrainResult:
        """Train until ``max_steps``, the epochs, ``max_minutes`` or early stopping; returns how it ended.

        Raises ``UserError`` for a bad data path or run folder (before any work: a folder train did
        not make, a checkpoint folder, one another trainer is writing) and ``RunStopped`` after
        too many non-finite losses in a row. The run folder is locked while the run writes it.
        """
        self._check_data_path()  # before _prepare_run_dir, so a wrong path leaves no run folder behind
        self._lock = None
        try:
            self._prepare_run_dir()
            return self._train()
        finally:
            if self._lock is not None:
                self._lock.release()

    def _train(self) -> TrainResult:
        handler = attach_log_file(self.run_dir) if self.main else None
        if self.main:
            self._log_launch()
        # the Hugging Face stack is slow to import: only this path needs it
        from accelerate.utils import set_seed

        set_seed(self.config.train.seed)  # python, numpy and torch: caption dropout uses python's
        system, dataset, dev = self._build()
        self.system = system
        model = system.model
        speed = setup_for_speed(model, self.config.train, shards_weights=self.engine.shards_weights)  # caches, torch.compile
        if self.main and any(speed.values()):
            log.info("speed settings: %s", speed)
        if self._auto_micro and self.accelerator.device.type == "cuda":
            self._micro_batch_from_memory(model, dataset)
        optimizer, scheduler = self._optimizer(model)
        state = self._restore(model, optimizer, scheduler)
        if self.engine.name.startswith("deepspeed"):
            engines.configure_deepspeed(self.accelerator, micro_batch=self.config.train.micro_batch_size,
                                        accumulation=self.accumulation, grad_clip=self.config.train.grad_clip)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self._clip_groups = clip_groups(model) if self.config.train.grad_clip_per_part else {}
        if self._resumed_from is not None and self.engine.sharded:
            engines.load_engine_state(self.accelerator, self.engine, self.model, self.optimizer, self._resumed_from)  # optimizer, generators
        self.ema = self._weight_average(model)  # after prepare: the average lives where the weights now are
        self.scheduler, self.dataset, self.dev = scheduler, dataset, dev
        self.metrics = MetricsLog(self.run_dir, enabled=self.main)
        try:
            return self._loop(state)
        finally:
            self.metrics.close()
            if handler is not None:
                logging.getLogger("photodialog").removeHandler(handler)

    def _restore(self, model, optimizer, scheduler) -> TrainState:
        self._saved_step = None  # the step of the newest checkpoint on disk, so no step is written twice
        self._resumed_from = None
        latest = self._latest_whole() if self.resume else None
        if latest is None:
            if self.resume and self.main:
                log.info("--resume: no checkpoint in %s yet, starting from the beginning", self.run_dir)
            return TrainState(tau=self.config.train.tau_start)
        engines.check_resumable(latest, self.engine)
        if not self.engine.weights_in_engine_state:
            load_trainable(model, latest)
        if self.engine.sharded:  # optimizer and generators come from the engine's shards after prepare
            ckpt.load_resume_state(latest, None, scheduler, generators=False)
        else:
            ckpt.load_resume_state(latest, optimizer, scheduler)
        state = read_state(latest)
        self._position_in_samples(state, latest)
        self._saved_step, self._resumed_from = state.step, latest
        state.finished, state.stop_reason = False, ""  # the new limits decide (a finished run may be extended)
        if self.main:
            ckpt.sync_best_pointer(self.run_dir)
            self._drop_metrics_after(state.step)
            log.info("resumed from %s (step %d, epoch %d)", latest.name, state.step, state.epoch)
        return state

    def _latest_whole(self) -> Path | None:
        """The newest checkpoint whose files match their manifest's sizes and SHA-256 sums."""
        for folder in reversed(list_checkpoints(self.run_dir)):
            problem = checkpoint_problem(folder, hashes=True)
            if problem is None:
                return folder
            log.warning("skipping the broken checkpoint %s (%s); trying the one before", folder, problem)
        return None

    def _position_in_samples(self, state: TrainState, folder: Path) -> None:
        """Turn the saved data position into micro-batches of this run's size, so that a changed
        train.micro_batch_size (or number of processes) goes on at exactly the next sample."""
        per_batch = self.config.train.micro_batch_size * self.accelerator.num_processes
        samples = state.samples_in_epoch
        if samples < 0:  # saved before positions were kept in samples: the saved micro-batch size counts

            saved_micro = load_config(str(folder / "config.yaml")).train.micro_batch_size
            if saved_micro != self.config.train.micro_batch_size and state.batches_in_epoch:
                raise UserError(
                    f"{folder} was saved {state.batches_in_epoch} micro-batches into epoch {state.epoch} with "
                    f"train.micro_batch_size={saved_micro}; resume with that size (a checkpoint of this version keeps "
                    f"its position in samples and allows a change)"
                )
            samples = state.batches_in_epoch * per_batch
        if samples % per_batch:
            raise UserError(
                f"{folder} stopped {samples} samples into epoch {state.epoch}, which is not a whole number of micro-batches "
                f"of {per_batch} (train.micro_batch_size x processes); pick a micro_batch_size that divides {samples}"
            )
        state.samples_in_epoch, state.batches_in_epoch = samples, samples // per_batch

    def _weight_average(self, model):
        """The moving average of the trainable weights (``train.ema_decay``), restored on --resume;
        under FSDP and ZeRO-3 each process averages its own shard (``training/ema.py``)."""
        decay = self.config.train.ema_decay
        if not decay:
            return None
        average = WeightAverage({n: p for n, p in model.named_parameters() if p.requires_grad}, decay)
        if self._resumed_from is not None and (self._resumed_from / EMA_WEIGHTS).is_file():
            average.load(read_weights(self._resumed_from / EMA_WEIGHTS,
                                      "resume from an earlier checkpoint of the run (pass its folder to --resume)"))
        return average

    def _drop_metrics_after(self, step: int) -> None:
        """Metrics a killed run logged after its last checkpoint would be logged again: drop them."""
        path = self.run_dir / "metrics.jsonl"
        if path.is_file():
            kept = [json.dumps(r) for r in read_metrics(self.run_dir) if r.get("step", 0) <= step]
            write_text(path, "".join(line + "\n" for line in kept))  # beside and renamed: a kill keeps the old log

    def _steps_per_epoch(self) -> int:
        """Whole optimizer steps in one pass over the data (at least one: see _check_one_step_fits);
        the samples of a last partial step are dropped."""
        return len(self.dataset) // self.config.train.batch_size

    def _total_steps(self) -> int:
        t = self.config.train
        by_epochs = self._steps_per_epoch() * t.epochs
        return min(by_epochs, t.max_steps) if t.max_steps else by_epochs

    def _tau(self, step: int) -> float:
        t = self.config.train
        anneal = t.tau_anneal_steps or round(t.tau_anneal_epochs * self._steps_per_epoch())
        return tau_at(step, start=t.tau_start, end=t.tau_end, anneal_steps=anneal, shape=t.tau_schedule)

    def _loop(self, state: TrainState) -> TrainResult:
        t = self.config.train
        total = self._total_steps()
        started = time.time()
        bar = self._progress_bar(total, state.step)
        last_loss = None
        while not state.finished:
            if state.step >= total:
                state.finished, state.stop_reason = True, "max_steps" if t.max_steps and state.step >= t.max_steps else "epochs"
                break
            order = epoch_order(self.dataset, state.epoch, t.seed, t.micro_batch_size * self.accelerator.num_processes,
                                self.config.data.photo_sample_weight, self.config.data.photo_reply_sample_weight)
            usable = self._steps_per_epoch() * self.accumulation  # micro-batches
            while state.batches_in_epoch + self.accumulation <= usable and state.step < total and not state.finished:
                result = self._optimizer_step(order, state)
                stepped = result is not None  # a skipped (NaN) step leaves state.step where it was
                if stepped:
                    last_loss = result["loss"]
                    self._after_step(state, result, bar, started)
                if t.max_minutes and (time.time() - started) / 60 >= t.max_minutes:
                    state.finished, state.stop_reason = True, "max_minutes"
                elif stepped and self._should_evaluate(state, end_of_epoch=False):
                    self._evaluate(state)  # saves this step too, with the evaluation's result
                elif stepped and state.step % t.save_every_steps == 0:
                    self._save(state)
            if state.finished or state.step >= total:
                continue  # stopped inside the epoch: its data position stays as it is, for --resume
            state.epoch, state.batches_in_epoch, state.samples_in_epoch = state.epoch + 1, 0, 0
            if self._should_evaluate(state, end_of_epoch=True):
                self._evaluate(state)
        if bar is not None:
            bar.close()
        self._finish(state)
        best = best_checkpoint(self.run_dir)
        return TrainResult(self.run_dir, state.step, last_loss, state.stop_reason, best)

    def _progress_bar(self, total: int, initial: int):
        if not self.progress:
            return None
        # progress bars only where they are shown; keeps light callers light
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)

    def _micro_batch(self, order, position: int):
        indices = order.local_batch(position, self.accelerator.process_index, self.accelerator.num_processes)
        batch = self.system.make_batch([self.dataset[i] for i in indices])
        return batch.to(self.accelerator.device), indices

    def _optimizer_step(self, order, state: TrainState) -> dict | None:
        """Accumulate ``self.accumulation`` micro-batches, then one optimizer step (or a skip)."""
        t = self.config.train
        tau = self._tau(state.step)
        totals = {"loss": 0.0, "text_loss": 0.0, "image_loss": 0.0, "image_targets": 0}
        finite, seen = True, []
        for micro in range(self.accumulation):
            batch, indices = self._micro_batch(order, state.batches_in_epoch + micro)
            seen += indices
            # Accelerate syncs gradients (DDP), scales the loss and, under DeepSpeed, steps the
            # engine only on the last micro-batch of each optimizer step.
            idle = self._idle_parts(batch)
            with self.accelerator.accumulate(self.model), self.accelerator.autocast():
                out = self.model(batch, tau=tau, alpha=t.alpha, text_weight=t.text_loss_weight, idle_parts=idle)
                ok = self._all_finite(out.loss)
                finite = finite and ok
                if ok:
                    self.accelerator.backward(out.loss)
            self._add_losses(totals, out)
        state.batches_in_epoch += self.accumulation
        state.samples_in_epoch = state.batches_in_epoch * t.micro_batch_size * self.accelerator.num_processes
        if not finite:
            self.optimizer.zero_grad(set_to_none=True)
            self._bad_step(state)
            return None
        state.bad_steps_in_row = 0
        grad_norm, part_norms = self._clip_gradients()
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update()
        state.step += 1
        state.tau = tau
        totals.update(tau=tau, lr=self.scheduler.get_last_lr()[0], samples=seen)
        if grad_norm is not None:
            totals["grad_norm"] = float(grad_norm)
        totals.update({f"grad_norm_{name}": float(norm) for name, norm in part_norms.items()})
        return totals

    def _idle_parts(self, batch) -> frozenset[str]:
        """The parts another process runs in this micro-batch and this one does not (FSDP, DeepSpeed).

        Their gradients are reduced as flat buffers of every weight that has one, so a part with a
        gradient on one process and none on another (a micro-batch with no context photo, or no
        target photo, beside one with) makes the sizes disagree: gloo aborts, NCCL may hang. This
        process then runs the part on a blank input times 0 (``PhotoDialogModel.forward``'s
        ``idle_parts``). Parts that no process runs get no gradient anywhere, as on one process,
        and DDP finds unused weights itself (``find_unused_parameters``): there, nothing changes.
        """
        if not self.engine.sharded:
            return frozenset()
        model = self.accelerator.unwrap_model(self.model)
        used = model.parts_used(batch, alpha=self.config.train.alpha)
        flags = torch.tensor([float(name in used) for name in OPTIONAL_PARTS], device=self.accelerator.device)
        anywhere = self.accelerator.reduce(flags, reduction="sum")
        return frozenset(name for name, count in zip(OPTIONAL_PARTS, anywhere.tolist()) if count > 0 and name not in used)

    def _clip_gradients(self) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """Clip to ``train.grad_clip`` (0: not at all); returns the norm before clipping over all
        parameters and, with ``train.grad_clip_per_part``, each part's (each clipped on its own)."""
        t = self.config.train
        if t.grad_clip <= 0:
            return None, {}
        if not t.grad_clip_per_part:
            return self.accelerator.clip_grad_norm_(self.model.parameters(), t.grad_clip), {}
        self.accelerator.unscale_gradients()  # once for all parts (fp16's scaler refuses a second unscale)
        norms = {name: torch.nn.utils.clip_grad_norm_(params, t.grad_clip) for name, params in self._clip_groups.items()}
        return torch.linalg.vector_norm(torch.stack([n.float() for n in norms.values()])), norms

    def _add_losses(self, totals: dict, out) -> None:
        for key, value in (("loss", out.loss), ("text_loss", out.text_loss), ("image_loss", out.image_loss)):
            if value is not None:
                totals[key] += float(value.detach()) / self.accumulation
        if getattr(out, "own_caption_loss", None) is not None:  # own_caption_path=llm_only: L_v of the LLM's own captions
            totals["own_caption_loss"] = totals.get("own_caption_loss", 0.0) + float(out.own_caption_loss.detach()) / self.accumulation
        totals["image_targets"] += out.stats.get("image_targets", 0)

    def _all_finite(self, loss: torch.Tensor) -> bool:
        """Whether ``loss`` is finite on every process; all of them get the same answer, so a NaN on
        one process skips the step on all (its NaN gradients would reach every process's weights)."""
        flag = torch.tensor(float(torch.isfinite(loss.detach()).all()), device=self.accelerator.device)
        if self.accelerator.num_processes == 1:
            return bool(flag > 0)
        # Accelerate's reduce knows sum, mean and max only (any other name sums): all finite = a sum of 1 each.
        return bool(self.accelerator.reduce(flag, reduction="sum") >= self.accelerator.num_processes)

    def _bad_step(self, state: TrainState) -> None:
        state.bad_steps_in_row += 1
        state.bad_steps_total += 1
        limit = self.config.train.max_bad_steps_in_row
        log.warning("non-finite loss at step %d: step skipped (%d in a row, %d in all)", state.step, state.bad_steps_in_row, state.bad_steps_total)
        if state.bad_steps_in_row >= limit:
            last = list_checkpoints(self.run_dir)
            where = f"the last checkpoint ({last[-1]}) is intact" if last else "no checkpoint was written yet"
            raise TrainingStopped(
                f"{state.bad_steps_in_row} optimizer steps in a row had a NaN or Inf loss (train.max_bad_steps_in_row={limit}); "
                f"stopped. {where}. Lower train.lr, keep train.grad_clip on, or check the data; then --resume."
            )

    def _after_step(self, state: TrainState, result: dict, bar, started: float) -> None:
        t = self.config.train
        samples = result.pop("samples")
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{result['loss']:.3f}", tau=f"{result['tau']:.3f}", lr=f"{result['lr']:.2e}")
        if state.step % t.log_every_steps == 0 or state.step == 1:
            elapsed = time.time() - started
            self.metrics.write({"step": state.step, "epoch": state.epoch, **result, "seconds": round(elapsed, 2)})
        if self.config.train.log_sample_ids:
            self._log_samples(state.step, samples)

    def _log_samples(self, step: int, indices: list[int]) -> None:
        rank = self.accelerator.process_index
        with (self.run_dir / f"samples.rank{rank}.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, "indices": indices}) + "\n")

    def _save(self, state: TrainState) -> None:
        """Checkpoint ``state.step``; if that step is on disk already (an evaluation and a periodic
        save on one step, an end-of-epoch evaluation, the end of the run), only its state.json is
        rewritten, as the weights have not changed since. Every process calls this at the same
        points and keeps the same ``_saved_step``, so all of them take the same branch: under FSDP
        or DeepSpeed ZeRO-3 gathering the weights is collective."""
        if self._saved_step == state.step:
            if self.main:
                ckpt.write_state(checkpoint_dir(self.run_dir, state.step), state)
            return
        trainable = {name for name, p in self.accelerator.unwrap_model(self.model).named_parameters() if p.requires_grad}
        full = self.accelerator.get_state_dict(self.model) or {}  # ZeRO-3 gathers it on the main process only (None elsewhere)
        weights = {name: value for name, value in full.items() if name in trainable}
        average = self.ema.state() if self.ema is not None else None  # every process: FSDP gathers the shards
        sharded = self.engine.sharded
        if sharded:  # every process writes its shard into the folder the main process starts
            if self.main:
                ckpt.start_checkpoint(self.run_dir, state.step)
            self.accelerator.wait_for_everyone()
            engines.save_engine_state(self.accelerator, self.engine, self.optimizer, ckpt.tmp_dir(self.run_dir, state.step))
        if self.main:
            config_text = (self.run_dir / "config.yaml").read_text(encoding="utf-8")
            ckpt.save_checkpoint(self.run_dir, weights, None if sharded else self.optimizer, self.scheduler, state,
                                 config_text, keep_last=self.config.train.keep_last, average=average, started=sharded)
        self.accelerator.wait_for_everyone()
        self._saved_step = state.step
        self._competence(state)

    def _competence(self, state: TrainState) -> None:
        """Print and log ``dev_competence`` of the weights just saved (their average when kept).
        Main process only, and not where a forward pass needs every process's shard."""
        if not (self.main and self.config.train.competence_turns) or self.engine.shards_weights:
            return
        with self.ema.swapped_in() if self.ema is not None else contextlib.nullcontext():
            scores = dev_competence(self.system, self.dev_samples, self.config)
        if scores:
            self.metrics.write({"step": state.step, "epoch": state.epoch, **scores}, prefix="competence")
            log.info("competence at step %d (first %d dev turns): %s", state.step, self.config.train.competence_turns,
                     ", ".join(f"{k} {v}" if isinstance(v, int) else f"{k} {v:.1f}" for k, v in scores.items()))

    # ------------------------------------------------------------ dev evaluation and the end

    def _should_evaluate(self, state: TrainState, *, end_of_epoch: bool) -> bool:
        t = self.config.train
        if t.eval_every_steps:
            return not end_of_epoch and state.step > 0 and state.step % t.eval_every_steps == 0
        every = max(1, round(t.eval_every_epochs))
        return end_of_epoch and state.epoch % every == 0

    def _evaluate(self, state: TrainState) -> None:
        """Dev evaluation on the main process; every process then takes the same best/stop decision."""
        model = self.accelerator.unwrap_model(self.model)
        metrics = {}
        # Under FSDP and ZeRO-3 a forward pass gathers every process's shard: all of them evaluate
        # (the same dev set, the same result); only the main one's score counts.
        if self.main or self.engine.shards_weights:
            with self.ema.swapped_in() if self.ema is not None else contextlib.nullcontext():
                metrics = dev_selection(self.system, model, self.dev, self.config)
        score = self._shared(metrics.get("selection"))
        # No score (no dev split): nothing to compare, so neither a best nor a lost patience;
        # _finish then names the last checkpoint the best.
        improved = score is not None and self._keep_score(state, score, metrics)
        self._save(state)
        if improved and self.main:
            ckpt.mark_best(self.run_dir, state.step)

    def _keep_score(self, state: TrainState, score: float, metrics: dict) -> bool:
        """Record a dev evaluation and decide best and early stopping; whether it improved."""
        if self.main:
            state.history.append({"step": state.step, "epoch": state.epoch, **metrics})
            self.metrics.write({"step": state.step, "epoch": state.epoch, **metrics}, prefix="dev")
            log.info("dev at step %d: %s", state.step, metrics)
        improved = state.best_metric is None or score > state.best_metric
        if improved:
            state.best_metric, state.best_step, state.evals_without_improvement = score, state.step, 0
        else:
            state.evals_without_improvement += 1
        patience = self.config.train.early_stopping_patience
        if patience and state.evals_without_improvement >= patience:
            state.finished, state.stop_reason = True, f"early stopping: no dev improvement in {patience} evaluations"
        return improved

    def _shared(self, value):
        """The main process's ``value`` on every process: only it evaluates, and a process that
        decided alone to stop early would leave the others waiting in the next all-reduce."""
        if self.accelerator.num_processes == 1:
            return value
        # the Hugging Face stack is slow to import: only this path needs it
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value], from_process=0)[0]

    def _finish(self, state: TrainState) -> None:
        state.finished = True
        self._save(state)  # the last step, or just the final state (finished, stop reason) if it is saved
        if self.main and state.best_step < 0:
            # No dev score: the last is the best we know, also when a finished run was extended.
            ckpt.mark_best(self.run_dir, state.step)
        if self.main:
            log.info("finished at step %d (%s)", state.step, state.stop_reason)


# The parts that ``train.grad_clip_per_part`` clips apart: the generator's modules are one part.
CLIP_PARTS = {"llm": "llm", "perceptron": "perceptron", "unet": "generator", "text_encoder": "generator", "vae": "generator"}


def clip_groups(model) -> dict[str, list[torch.nn.Parameter]]:
    """The trainable parameters of ``model`` (a ``PhotoDialogModel``) by part: ``llm``, ``perceptron``,
    ``generator`` (UNet, text encoder, VAE) and ``other`` (any outside them); empty parts left out."""
    groups: dict[str, list[torch.nn.Parameter]] = {}
    seen: set[int] = set()
    for name, module in model.part_modules().items():
        for p in module.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                groups.setdefault(CLIP_PARTS.get(name, name), []).append(p)
    other = [p for p in model.parameters() if p.requires_grad and id(p) not in seen]
    if other:
        groups["other"] = other
    return groups
