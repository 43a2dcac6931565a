"""`photodialog bench bridge|step|chat|startup|memory|generator|llm`: performance benchmarks with JSON output and targets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from photodialog.bench import bridge as bridge_bench
from photodialog.bench import chat as chat_bench
from photodialog.bench import generator as generator_bench
from photodialog.bench import llm as llm_bench
from photodialog.bench import load_memory
from photodialog.bench import paper as paper_bench
from photodialog.bench import profile as profile_bench
from photodialog.bench import startup as startup_bench
from photodialog.bench import step as step_bench
from photodialog.bench.machine import choose_threads, describe_machine
from photodialog.bench.results import emit
from photodialog.bench.vocab import VocabularySizes
from photodialog.cli.common import int_between, output_path, quiet_libraries
from photodialog.config import load_config
from photodialog.data.synth import ensure_world
from photodialog.data.synth.probe import Probe, train_probe
from photodialog.devices import resolve_device, torch_threads
from photodialog.errors import UserError
from photodialog.output_files import writable_file
from photodialog.registry import BRIDGES

EPILOG = """examples:
  photodialog bench bridge --json --out bench/bridge.json
  photodialog bench step --json
  photodialog bench step --preset paper --random-weights --json     (needs a CUDA GPU, ~80 GB)
  photodialog bench chat --checkpoint runs/tiny-e2e

Timings are medians over repeats after warmup. On a shared machine pass --threads 1 (or let the
default pick the idle cores) and compare only numbers from the same run. See docs/performance.md."""


def register(subparsers, summary: str) -> None:
    """Add this command's parser; ``summary`` is its line in ``photodialog --help`` (``cli.main.COMMANDS``)."""
    parser = subparsers.add_parser(
        "bench", help=summary,
        description="Measure the vocabulary bridge, a training step, a chat turn, the start-up time, the memory per "
                    "paper setting and the tiny image generator; print a summary or JSON.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    _bridge_parser(commands)
    _step_parser(commands)
    _chat_parser(commands)
    _startup_parser(commands)
    _memory_parser(commands)
    _generator_parser(commands)
    _llm_parser(commands)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def result_file(text: str) -> str:
    """A ``--out`` FILE bench may write: new, or a JSON object (an earlier result); checked before the work,
    so that a file of something else is never replaced."""
    path = Path(output_path(text))
    try:
        writable_file(text, "--out", create=False)  # a folder that cannot be written: said before the work
    except UserError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name, e.g. {path / 'bench.json'}")
    if path.exists():
        try:
            earlier = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            earlier = None
        if not isinstance(earlier, dict):
            raise argparse.ArgumentTypeError(f"{text} exists and is not the JSON result of a bench, which would replace "
                                             "it; give a new file name")
    return text


def _common(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print the full result as JSON instead of a summary")
    parser.add_argument("--out", type=result_file, metavar="FILE",
                   help="also write the JSON result to FILE (new, or the JSON of an earlier bench)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (the GPU when there is one; default)")
    parser.add_argument("--threads", type=int_between(0, 1024), default=0, metavar="N",
                        help="torch CPU threads, 0 to 1,024 (default: the idle cores, at least 1, so that a busy machine does not stall)")


def _bridge_parser(commands) -> None:
    p = commands.add_parser(
        "bridge", help="the vocabulary bridge vs the paper's sparse-COO product and the dense matrix",
        description="Forward+backward time and extra memory of the bridge at the paper's sizes (|V_LLM| 32,002, "
                    "|V_SD| 49,408, 32 captions x 20 tokens, width 1024) for each mode, against the sparse-COO and "
                    "dense matrix products in the same run; targets: < 1 MiB, < 1%% of a tiny step, >= 10x sparse-COO.",
    )
    _common(p)
    p.add_argument("--modes", default="sentence,word,exact", help="bridge modes, comma-separated (default: sentence,word,exact)")
    p.add_argument("--captions", type=int, default=32, help="captions in the batch (1 to 4,096; default 32, the paper's batch)")
    p.add_argument("--caption-tokens", type=int, default=20, help="LLM tokens per caption (1 to 1,024; default 20)")
    p.add_argument("--width", type=int, default=1024, help="text encoder embedding width (1 to 16,384; default 1024, OpenCLIP ViT-H)")
    p.add_argument("--llm-vocab", type=int, default=32_002, help="LLM vocabulary size (2 to 1,000,000; default 32,002: Llama-2 + [IMG] [/IMG])")
    p.add_argument("--sd-vocab", type=int, default=49_408, help="CLIP vocabulary size (2 to 1,000,000; default 49,408)")
    p.add_argument("--sd-length", type=int, default=77, help="text encoder positions (1 to 4,096; default 77)")
    p.add_argument("--repeats", type=int, default=7, help="timed runs of the bridge (1 to 1,000; default 7)")
    p.add_argument("--baseline-repeats", type=int, default=0,
                   help="extra timed runs of the slow baselines (0 to 1,000; default 0: their memory-tracking run is their timing)")
    p.add_argument("--dense", choices=["auto", "skip"], default="auto",
                   help="auto: run the dense matrices when they fit in half the free memory, else report their size")
    p.add_argument("--train-text-encoder", action="store_true", help="E also gets a gradient (the paper's recipe freezes it)")
    p.add_argument("--no-tiny-step", action="store_true", help="skip timing the tiny training step (the 1%% target)")
    p.set_defaults(func=run_bridge)


def _step_parser(commands) -> None:
    p = commands.add_parser(
        "step", help="a training step: end-to-end vs the pipeline (bridge none); or the paper's sizes on a GPU",
        description="Median training step time and peak memory of the end-to-end model vs the pipeline setting on the "
                    "same parts and batch (target: ratio <= 1.10). --preset paper --random-weights builds the paper's "
                    "architectures at full size with random weights (GPU only) and reports step time, memory, tokens/s, MFU.",
    )
    _common(p)
    p.add_argument("--preset", choices=["tiny", "paper"], default="tiny", help="tiny (CPU, default) or paper (GPU)")
    p.add_argument("--random-weights", action="store_true", help="paper preset: random weights from the published configs, no download")
    p.add_argument("--data", metavar="DIR", help="tiny preset: a world/dataset folder (default: a fresh 60-dialogue world)")
    p.add_argument("--batch-size", type=int, default=0, help="samples per step (0 to 4,096; default: 16 tiny, 4 paper = the recipe's micro-batch)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per setting after warmup (1 to 1,000,000; default 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (0 to 1,000; default 2)")
    p.add_argument("--seq-len", type=int, default=256, help="paper preset: tokens per sample (1 to 32,768; default 256)")
    p.add_argument("--image-targets", type=int, default=1, help="paper preset: photos shared in the batch (1 to 64; default 1)")
    p.add_argument("--no-gradient-checkpointing", action="store_true",
                   help="paper preset: keep all activations (the recipe recomputes them in backward)")
    p.add_argument("--peak-tflops", type=float, default=0.0, help="paper preset: the GPU's dense bf16 peak for MFU (default: known GPUs)")
    p.add_argument("--profile", action="store_true",
                   help="where one step's time goes (torch.profiler): LLM, ViT + Q-Former, VAE, text encoder, UNet, "
                        "bridge, optimizer, data, host syncs; forward and backward apart, ms and share of the step")
    p.add_argument("--baseline", action="store_true",
                   help="paper preset: as before the speed work (no frozen-output caches, unfused AdamW), for before/after")
    p.add_argument("--compile", action="store_true", help="paper preset: torch.compile the UNet and the LLM decoder layers")
    p.add_argument("--compare-baseline", action="store_true",
                   help="paper preset: time the baseline (--baseline) and the speed settings in turns on one model, with MFU of each")
    p.add_argument("--standin-sizes", action="store_true", help=argparse.SUPPRESS)  # tests: the paper path at tiny sizes on CPU
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="tiny preset: recipe overrides, e.g. model.image_loss_repeats=1")
    p.set_defaults(func=run_step)


def _chat_parser(commands) -> None:
    p = commands.add_parser(
        "chat", help="one chat turn: time to first token, tokens/s with and without KV cache, diffusion, latency",
        description="Time one chat turn of a checkpoint (by default a tiny one trained for 2 steps in a temporary folder).",
    )
    _common(p)
    p.add_argument("--checkpoint", metavar="DIR", help="checkpoint, run or export folder (default: train a tiny one for 2 steps)")
    p.add_argument("--new-tokens", type=int, default=30, help="tokens generated per reply, forced (1 to 4,096; default 30, as the paper's eval)")
    p.add_argument("--diffusion-steps", type=int, default=20, help="diffusion steps per photo (1 to 1,000; default 20)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each measurement (1 to 1,000; default 3)")
    p.set_defaults(func=run_chat)


def _startup_parser(commands) -> None:
    p = commands.add_parser(
        "startup", help="how long `photodialog --help` takes, and which heavy libraries it imports",
        description="Wall time of `python -m photodialog --help` in fresh interpreters (median of --repeats), "
                    "and the heavy libraries (torch, transformers, diffusers...) that building the parser imports.",
    )
    p.add_argument("--json", action="store_true", help="print the full result as JSON instead of a summary")
    p.add_argument("--out", type=result_file, metavar="FILE",
                   help="also write the JSON result to FILE (new, or the JSON of an earlier bench)")
    p.add_argument("--repeats", type=int, default=7, help="timed runs (1 to 1,000; default 7)")
    p.set_defaults(func=run_startup)


def _generator_parser(commands) -> None:
    p = commands.add_parser(
        "generator", help="the tiny image generator: probe accuracy against training steps and seconds, ms per photo",
        description="Train the chosen tiny generator (configs/tiny-pretrain-generator.yaml, for as many steps as the "
                    "one photodialog ships) and the one it replaced (the earlier demo's) on a synthetic world, and score "
                    "photos drawn from every gold test caption at checkpoints with the world's probe (object, colour, "
                    "scene, all, held-out triples); milliseconds per photo at the demo's sampler settings; the same "
                    "for the shipped generator, and whether the chosen run rebuilt it byte for byte. One CPU thread "
                    "by default. Takes about 45 minutes on an idle machine (--steps 1200 --no-bundled: about 15).",
    )
    p.add_argument("--json", action="store_true", help="print the full result as JSON instead of a summary")
    p.add_argument("--out", type=result_file, metavar="FILE",
                   help="also write the JSON result to FILE (new, or the JSON of an earlier bench)")
    p.add_argument("--world", metavar="DIR", help="a synthetic world with its probe (default: the demo's, made in --work)")
    p.add_argument("--work", metavar="DIR", default="bench-generator", help="folder for the world and the runs (default: bench-generator; reruns reuse it)")
    p.add_argument("--steps", type=int, default=0, metavar="N", help="training steps of each setting (0 to 1,000,000; default: each recipe's)")
    p.add_argument("--eval-every", type=int, default=250, metavar="N", help="score a checkpoint every N steps (1 to 1,000,000; default 250)")
    p.add_argument("--settings", default="chosen,previous",
                   help="which settings to train: chosen, previous (default both), or none: only score and time the shipped "
                        "generator (about a minute)")
    p.add_argument("--threads", type=int_between(0, 1024), default=1, metavar="N", help="torch CPU threads, 0 to 1,024 (default 1, as the demo's lanes)")
    p.add_argument("--grid", metavar="FILE.png", help="also save the shipped generator's photos from the first 40 test captions as a grid")
    p.add_argument("--sweep", nargs="?", const="default", metavar="S:N:G,...",
                   help="also score the shipped generator on the dev split with each SAMPLER:STEPS:GUIDANCE "
                        "(alone: DPM-Solver++ at 3-6 steps x guidance 2-5, and DDIM 20 at 3), how the demo's settings were chosen")
    p.add_argument("--no-bundled", dest="bundled", action="store_false",
                   help="skip the shipped generator's scores and the byte comparison with it")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides of the chosen setting, e.g. model.tiny.latent_channels=8")
    p.set_defaults(func=run_generator)


def _llm_parser(commands) -> None:
    p = commands.add_parser(
        "llm", help="the shipped tiny LLM: caption accuracy, share F1 and 'sees the photo' against steps; rebuild cost",
        description="Score every checkpoint of a pretraining run of configs/tiny-pretrain-text.yaml (the OUT.run folder "
                    "of `photodialog assets rebuild llm --out OUT`) on the test split of its world: does its own caption "
                    "name the gold photo's object, colour and scene (over every gold photo turn), share F1, and does its "
                    "reply to an unannounced photo name the photo's object (and with the photo blanked). Adds the "
                    "rebuild's CPU time on one thread (OUT/training.json) and the shipped start's scores. One thread; "
                    "about 30 CPU-seconds per checkpoint.",
    )
    p.add_argument("--run", required=True, metavar="DIR", help="the pretraining run folder (e.g. tiny-llm.run)")
    p.add_argument("--world", metavar="DIR", help="data to score on (default: the run's own data.path)")
    p.add_argument("--split", default="test", help="split to score (default: test)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON instead of a summary")
    p.add_argument("--out", metavar="FILE", help="also write the JSON result to FILE")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=run_llm)


def run_llm(args) -> int:
    quiet_libraries()
    with torch_threads(1):
        result = llm_bench.llm_curve(Path(args.run), Path(args.world) if args.world else None, args.split, progress=args.progress)
        result["machine"] = describe_machine("cpu")
    emit(result, as_json=args.json, out=args.out, summary_lines=llm_bench.summary_lines(result))
    return 0


def _memory_parser(commands) -> None:
    p = commands.add_parser(
        "memory", help="host RAM to load and GPU memory to train each paper setting, from parameter counts",
        description="Builds the paper's architectures on the meta device (no memory, no GPU) with each setting's training "
                    "modes and counts weights at rest, host RAM to load and GPU memory before activations "
                    "(weights + gradients + AdamW state). See docs/performance.md.",
    )
    p.add_argument("--json", action="store_true", help="print the full result as JSON instead of a table")
    p.add_argument("--out", type=result_file, metavar="FILE",
                   help="also write the JSON result to FILE (new, or the JSON of an earlier bench)")
    p.set_defaults(func=run_memory)


def run_memory(args) -> int:
    quiet_libraries()
    result = load_memory.all_settings()
    emit(result, as_json=args.json, out=args.out, summary_lines=[load_memory.markdown(result)])
    return 0


def _prepare(args):
    """Quiet libraries and the device: what every benchmark does first."""
    quiet_libraries()
    return torch.device(resolve_device(args.device))


def _run_and_report(args, run, settings_on, summary_lines) -> int:
    """What every benchmark does once its flags are checked.

    Prepare the device, build the settings for it (``settings_on(device)``), run them with the
    chosen torch CPU threads (restored afterwards), then print or write the result.
    """
    settings = settings_on(str(_prepare(args)))
    with torch_threads(choose_threads(args.threads)):
        result = run(settings)
    emit(result, as_json=args.json, out=args.out, summary_lines=summary_lines(result))
    return 0


# The largest value of each count flag (its --help says so): a typo of many digits is refused at
# once instead of allocating a matrix or looping for days.
HIGHEST = {"captions": 4096, "caption_tokens": 1024, "width": 16_384, "llm_vocab": 1_000_000, "sd_vocab": 1_000_000,
           "sd_length": 4096, "repeats": 1000, "baseline_repeats": 1000, "batch_size": 4096, "steps": 1_000_000,
           "warmup": 1000, "seq_len": 32_768, "image_targets": 64, "new_tokens": 4096, "diffusion_steps": 1000,
           "eval_every": 1_000_000, "threads": 1024}


def _positive(**values) -> None:
    """Each value above 0 and at most its ``HIGHEST``; ``UserError`` naming the flag otherwise."""
    for name, value in values.items():
        if value <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {value}")
    _not_above(**values)


def _not_above(**values) -> None:
    for name, value in values.items():
        if value > HIGHEST[name]:
            raise UserError(f"--{name.replace('_', '-')} may be at most {HIGHEST[name]:,}, got {value:,}")


def run_bridge(args) -> int:

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    # The benchmark times the pooled bridges against the paper's matrix product; aligned is not pooled.
    pooled = [m for m in BRIDGES.names if m not in ("none", "aligned")]
    bad = [m for m in modes if m not in pooled]
    if bad or not modes:
        raise UserError(f"--modes: choose among {', '.join(pooled)} (got {args.modes!r}; the benchmark compares the "
                        "pooled bridges with the paper's matrix product, which aligned and none are not)")
    _positive(captions=args.captions, caption_tokens=args.caption_tokens, width=args.width, llm_vocab=args.llm_vocab,
              sd_vocab=args.sd_vocab, repeats=args.repeats)
    if args.baseline_repeats < 0:
        raise UserError("--baseline-repeats cannot be negative")
    _not_above(baseline_repeats=args.baseline_repeats, sd_length=args.sd_length)
    if args.sd_length < 3:
        raise UserError("--sd-length must be at least 3 (start, one token, end)")
    return _run_and_report(args, bridge_bench.run_bridge_bench, lambda device: bridge_bench.BridgeBenchSettings(
        modes=modes, captions=args.captions, caption_tokens=args.caption_tokens, width=args.width,
        vocab=VocabularySizes(llm_vocab=args.llm_vocab, sd_vocab=args.sd_vocab, sd_max_length=args.sd_length),
        train_text_encoder=args.train_text_encoder, repeats=args.repeats, baseline_repeats=args.baseline_repeats,
        dense=args.dense, tiny_step=not args.no_tiny_step, device=device,
    ), bridge_bench.summary_lines)


def run_step(args) -> int:

    _positive(steps=args.steps, seq_len=args.seq_len)
    if args.batch_size < 0 or args.warmup < 0 or args.image_targets < 0:
        raise UserError("--batch-size, --warmup and --image-targets cannot be negative")
    _not_above(batch_size=args.batch_size, warmup=args.warmup, image_targets=args.image_targets)
    if args.preset == "paper":
        return _run_paper_step(args)
    if args.random_weights:
        raise UserError("--random-weights goes with --preset paper (the tiny preset is always random)")

    run, summary_lines = step_bench.run_step_bench, step_bench.summary_lines
    if args.profile:
        run, summary_lines = profile_bench.run_tiny_profile, profile_bench.summary_lines
    return _run_and_report(args, run, lambda device: step_bench.StepBenchSettings(
        data=args.data, batch_size=args.batch_size or 16, steps=args.steps, warmup=args.warmup,
        overrides=list(args.overrides), device=device,
    ), summary_lines)


def _run_paper_step(args) -> int:

    if not args.random_weights:
        raise UserError("--preset paper needs --random-weights: the benchmark builds the paper's architectures from "
                        "their published configs (no download); real checkpoints are benchmarked through `photodialog train`")
    if args.overrides:
        raise UserError("KEY=VALUE overrides apply to the tiny preset only")
    if not args.standin_sizes:
        paper_bench.require_gpu(args.device)  # refuse at once on the CPU, before building anything
    if args.profile and args.compare_baseline:
        raise UserError("--profile and --compare-baseline are separate runs: choose one")
    run, summary_lines = paper_bench.run_paper_step_bench, paper_bench.summary_lines
    if args.profile:
        run, summary_lines = paper_bench.run_paper_profile, profile_bench.summary_lines
    if args.compare_baseline:
        run, summary_lines = paper_bench.run_paper_compare, paper_bench.compare_summary_lines
    return _run_and_report(args, run, lambda device: paper_bench.PaperStepSettings(
        batch_size=args.batch_size or 4, seq_len=args.seq_len, image_targets=args.image_targets, steps=args.steps,
        warmup=args.warmup, gradient_checkpointing=False if args.no_gradient_checkpointing else None,
        peak_tflops=args.peak_tflops, standin=args.standin_sizes, profile=args.profile, baseline=args.baseline,
        compile=args.compile, compare=args.compare_baseline, device=device,
    ), summary_lines)


def run_chat(args) -> int:

    _positive(new_tokens=args.new_tokens, diffusion_steps=args.diffusion_steps, repeats=args.repeats)
    return _run_and_report(args, chat_bench.run_chat_bench, lambda device: chat_bench.ChatBenchSettings(
        checkpoint=args.checkpoint, new_tokens=args.new_tokens, diffusion_steps=args.diffusion_steps,
        repeats=args.repeats, device=device,
    ), chat_bench.summary_lines)


def run_startup(args) -> int:

    _positive(repeats=args.repeats)
    result = startup_bench.run_startup_bench(startup_bench.StartupBenchSettings(repeats=args.repeats))
    emit(result, as_json=args.json, out=args.out, summary_lines=startup_bench.summary_lines(result))
    return 0


def run_generator(args) -> int:


    _positive(eval_every=args.eval_every, threads=args.threads)
    _not_above(steps=args.steps)
    chosen = [] if args.settings.strip() == "none" else [s.strip() for s in args.settings.split(",") if s.strip()]
    if (not chosen and args.settings.strip() != "none") or any(s not in generator_bench.SETTINGS for s in chosen):
        raise UserError(f"--settings: choose among {', '.join(generator_bench.SETTINGS)}, or none (got {args.settings!r})")
    if not chosen and not args.bundled:
        raise UserError("--settings none --no-bundled leaves nothing to measure; drop one of them")
    quiet_libraries()
    work = Path(args.work)
    if work.exists() and not work.is_dir():
        raise UserError(f"--work {work} is a file; give a folder (it holds the world and the runs)")
    try:
        sweep = generator_bench.parse_sweep(generator_bench.DEFAULT_SWEEP if args.sweep == "default" else args.sweep or "")
    except ValueError as err:
        raise UserError(str(err)) from None
    world = Path(args.world) if args.world else _bench_world(work / "world")
    steps = {name: args.steps or _recipe_steps(name) for name in chosen}
    with torch_threads(args.threads):
        result = generator_bench.run_generator_bench(generator_bench.GeneratorBench(world=world, work=work / "runs", steps=steps, eval_every=args.eval_every,
                                                    settings=chosen, overrides=list(args.overrides), bundled=args.bundled,
                                                    grid=Path(args.grid) if args.grid else None, sweep=sweep))
        result["machine"] = describe_machine("cpu")  # inside: it records the threads the bench ran with
    emit(result, as_json=args.json, out=args.out, summary_lines=generator_bench.summary_lines(result))
    return 0


def _bench_world(path):
    """The demo's world (2,000 dialogues, seed 0) and its probe, made once."""
    ensure_world(path, dialogues=2000, seed=0, image_size=64, progress=True)
    try:
        Probe.load(path)
    except Exception:  # noqa: BLE001 - no probe yet: train it as the demo does
        train_probe(path, epochs=10, threads=1)
    return path


def _recipe_steps(name: str) -> int:
    recipe, overrides = generator_bench.SETTINGS[name]
    return load_config(recipe, overrides).train.max_steps
