"""Loading the three pretrained parts from hub ids or local folders, in their published layouts.

* LLM: a causal LM folder with its tokenizer (``meta-llama/Llama-2-7b-chat-hf``).
* BLIP-2: a ``Blip2ForConditionalGeneration`` folder (``Salesforce/blip2-opt-2.7b-coco``); only the
  vision model, the Q-Former and the query tokens are read, from the weight shards that hold them,
  so the OPT language model is never loaded.
* Stable Diffusion: a pipeline folder with ``unet/ vae/ text_encoder/ tokenizer/ scheduler/``
  (``stabilityai/stable-diffusion-2-1-base``); without ``vae/`` the UNet works in pixel space.

The same functions load the ``tiny`` preset, whose random parts are saved in these layouts first.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError

from photodialog.errors import UserError

# What loading a part's folder raises for a missing, unreadable or malformed file: safetensors'
# error (a damaged weights file) derives from Exception only.
LOAD_ERRORS = (OSError, ValueError, SafetensorError)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
BLIP2_PREFIXES = ("vision_model.", "qformer.", "query_tokens")


def _is_local(path_or_id: str) -> bool:
    return Path(path_or_id).expanduser().exists()


def _hub_error(what: str, path_or_id: str, err: Exception) -> UserError:
    return UserError(
        f"could not load the {what} from '{path_or_id}': {err}. Give a local folder in the published layout, "
        "or a hub id on a machine that can reach the Hugging Face Hub (and has accepted the model's licence)."
    )


def load_llm(path_or_id: str, dtype: str = "float32"):
    """A causal LM and its tokenizer."""
    # the Hugging Face stack is slow to import: only this path needs it
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path_or_id)
        model = AutoModelForCausalLM.from_pretrained(path_or_id, dtype=DTYPES[dtype])
    except LOAD_ERRORS as err:
        raise _hub_error("language model", path_or_id, err) from err
    return model, tokenizer


def load_blip2_parts(path_or_id: str, dtype: str = "float32"):
    """BLIP-2's vision model, Q-Former and query tokens, without its language model."""
    # the Hugging Face stack is slow to import: only this path needs it
    from transformers import Blip2Config, Blip2QFormerModel, Blip2VisionModel

    try:
        config = Blip2Config.from_pretrained(path_or_id)
        state = _read_blip2_state(path_or_id)
    except LOAD_ERRORS as err:
        raise _hub_error("BLIP-2 vision tower and Q-Former", path_or_id, err) from err
    vision = Blip2VisionModel(config.vision_config)
    qformer = Blip2QFormerModel(config.qformer_config)
    _load_prefixed(vision, state, "vision_model.", path_or_id)
    _load_prefixed(qformer, state, "qformer.", path_or_id)
    if "query_tokens" not in state:
        raise UserError(f"'{path_or_id}' has no 'query_tokens' weight: is it a BLIP-2 checkpoint?")
    # BLIP-2 keeps the Q-Former and queries in float32; the ViT may be half precision.
    return vision.to(DTYPES[dtype]), qformer, state["query_tokens"].float()


def _load_prefixed(module, state: dict, prefix: str, source: str) -> None:
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    missing, unexpected = module.load_state_dict(sub, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise UserError(f"'{source}': the {prefix.rstrip('.')} weights do not match its config (missing {missing[:3]}, unexpected {unexpected[:3]})")


def _read_blip2_state(path_or_id: str) -> dict[str, torch.Tensor]:
    """Only the tensors under BLIP2_PREFIXES, from safetensors (or .bin) files, sharded or not."""
    files = _weight_files(path_or_id)
    state: dict[str, torch.Tensor] = {}
    for file, names in files:
        if file.suffix == ".safetensors":
            # imports torch: only reading or writing weights needs it
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as handle:
                for name in handle.keys():
                    if name.startswith(BLIP2_PREFIXES) and (names is None or name in names):
                        state[name] = handle.get_tensor(name)
        else:
            loaded = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
            state.update({k: v for k, v in loaded.items() if k.startswith(BLIP2_PREFIXES)})
    if not state:
        raise OSError("no vision_model / qformer / query_tokens weights found")
    return state


def _weight_files(path_or_id: str) -> list[tuple[Path, set | None]]:
    """The weight files that hold BLIP-2's vision/Q-Former tensors (only those shards are fetched)."""
    for index_name, single in (("model.safetensors.index.json", "model.safetensors"), ("pytorch_model.bin.index.json", "pytorch_model.bin")):
        index = _fetch(path_or_id, index_name, required=False)
        if index is not None:
            weight_map = json.loads(index.read_text())["weight_map"]
            wanted: dict[str, set] = {}
            for name, shard in weight_map.items():
                if name.startswith(BLIP2_PREFIXES):
                    wanted.setdefault(shard, set()).add(name)
            return [(_fetch(path_or_id, shard), names) for shard, names in sorted(wanted.items())]
        file = _fetch(path_or_id, single, required=False)
        if file is not None:
            return [(file, None)]
    raise OSError("no model.safetensors or pytorch_model.bin (or their shard index) found")


def _fetch(path_or_id: str, filename: str, required: bool = True) -> Path | None:
    if _is_local(path_or_id):
        file = Path(path_or_id).expanduser() / filename
        if file.is_file():
            return file
        if required:
            raise OSError(f"{file} is missing")
        return None
    # the Hugging Face stack is slow to import: only this path needs it
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(path_or_id, filename))
    except EntryNotFoundError:
        if required:
            raise
        return None


def load_diffusion(path_or_id: str, dtype: str = "float32"):
    """(text_encoder, unet, vae or None, noise scheduler, tokenizer) from a Stable Diffusion folder."""
    # the Hugging Face stack is slow to import: only this path needs it
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    torch_dtype = DTYPES[dtype]
    try:
        tokenizer = CLIPTokenizer.from_pretrained(path_or_id, subfolder="tokenizer")
        text_encoder = CLIPTextModel.from_pretrained(path_or_id, subfolder="text_encoder", dtype=torch_dtype)
        unet = UNet2DConditionModel.from_pretrained(path_or_id, subfolder="unet", torch_dtype=torch_dtype)
        scheduler = DDPMScheduler.from_pretrained(path_or_id, subfolder="scheduler")
        vae = None
        if not _is_local(path_or_id) or (Path(path_or_id).expanduser() / "vae").is_dir():
            vae = AutoencoderKL.from_pretrained(path_or_id, subfolder="vae", torch_dtype=torch_dtype)
    except LOAD_ERRORS as err:
        raise _hub_error("Stable Diffusion components", path_or_id, err) from err
    return text_encoder, unet, vae, scheduler, tokenizer
