"""Pieces shared by the command modules (not a command itself)."""

from __future__ import annotations

import logging
import os


def quiet_libraries() -> None:
    """Keep the terminal for photodialog's own progress: silence library load bars and notices."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    import diffusers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    logging.getLogger("photodialog").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def add_recipe_arguments(parser) -> None:
    parser.add_argument("--config", required=True, metavar="CONFIG",
                        help="YAML recipe: a path (e.g. configs/tiny-e2e.yaml) or the name of a shipped recipe")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="override recipe keys, dotted (model.bridge=none) or bare when unique (max_steps=30)")
