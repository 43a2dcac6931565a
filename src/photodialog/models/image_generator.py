"""The image generator (paper §2.4.3): Stable Diffusion's text encoder, UNet, VAE and scheduler.

Training loss ``L_v`` (Eq. 12) is the scheduler's own target: the added noise (epsilon
prediction) or the velocity (v-prediction), MSE. Without a VAE the UNet diffuses directly in
pixel space (the ``tiny`` preset: a random VAE encodes nothing meaningful, so it has none).
Sampling runs a diffusers scheduler for a chosen number of steps with classifier-free guidance;
all of its noise (the starting sample and any a stochastic sampler adds at each step) comes from
the ``seed``, so the same seed draws the same photo whatever else used torch's global RNG.
"""

from __future__ import annotations

import contextlib
import copy
import inspect

import torch
import torch.nn.functional as F
from torch import nn

from photodialog.models.profiling import part
from photodialog.models.text_encoding import encode_token_embeddings, token_embedding
from photodialog.registry import SAMPLERS



def image_to_tensor(image, size: int) -> torch.Tensor:
    """A PIL photo resized (shorter side) and centre-cropped to ``size``, in [-1, 1], [3, size, size]."""
    # only this path needs numpy; keeps light callers light
    import numpy as np
    from PIL import Image

    image = image.convert("RGB")
    scale = size / min(image.size)
    resized = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))), Image.Resampling.BICUBIC)
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    cropped = resized.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.asarray(cropped, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)


def tensor_to_image(tensor: torch.Tensor):
    """[3, H, W] in [-1, 1] -> PIL RGB."""
    # only photo work needs Pillow; keeps light callers light
    from PIL import Image

    array = ((tensor.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


def _seeded_step_options(scheduler, generator: torch.Generator) -> dict:
    """``{"generator": generator}`` when the scheduler's ``step`` takes one, else nothing.

    A stochastic sampler (DDPM, and Euler or DPM-Solver's SDE variants) adds fresh noise at every
    step; without the seeded generator that noise would come from torch's global RNG, and the
    same seed would not draw the same photo.
    """
    accepts = "generator" in inspect.signature(scheduler.step).parameters
    return {"generator": generator} if accepts else {}


# ATen's own bound (Convolution.cpp, ``use_mkldnn``): a single input of at most this many elements
# goes to its native convolution, faster there than oneDNN, whose fixed cost per call dominates.
SMALL_CONVOLUTION_INPUT = 20480


@contextlib.contextmanager
def _convolutions_for(photos: torch.Tensor, widest: int):
    """ATen's rule for a single small input applied to one photo's UNet calls: native CPU
    convolutions while ``photos`` (the initial noise, [C, c, h, w]) is one photo whose top-level
    activation (``widest`` channels, the UNet's first block, at h x w) has at most
    ``SMALL_CONVOLUTION_INPUT`` elements (the tiny generator: 32 x 8 x 8), else unchanged.

    Classifier-free guidance makes one photo's batch two, which sends it to oneDNN and its fixed
    cost per call: most of the tiny generator's time for one photo (``photodialog bench
    generator``). Batches of several photos, and a paper-size UNet (320 x 64 x 64), stay on
    oneDNN, which is faster there. The switch is process-wide while the loop runs.
    """
    if photos.device.type != "cpu" or photos.shape[0] != 1 or widest * photos.shape[-2] * photos.shape[-1] > SMALL_CONVOLUTION_INPUT:
        yield
        return
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


class ImageGenerator(nn.Module):
    """Text encoder + UNet (+ VAE) + noise scheduler, trained by ``loss`` and sampled by ``generate``."""

    def __init__(self, text_encoder, unet, noise_scheduler, tokenizer, vae=None, image_size: int | None = None,
                 snr_gamma: float = 0.0):
        super().__init__()
        self.snr_gamma = snr_gamma
        self.text_encoder, self.unet, self.vae = text_encoder, unet, vae
        self.noise_scheduler, self.tokenizer = noise_scheduler, tokenizer
        factor = 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1
        self.latent_factor = factor
        self.image_size = image_size or int(unet.config.sample_size) * factor
        self._samplers = {}  # sampler name -> the scheduler every draw copies (_sampler)

    # ------------------------------------------------------------ text

    def token_embedding(self) -> torch.Tensor:
        """E, the text encoder's token embedding matrix [|V_SD|, d] (the bridge reads R_SD @ E)."""
        return token_embedding(self.text_encoder)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """Hidden states for caption texts (the inference and pipeline path): [C, n, d]."""
        ids = self.tokenizer(texts, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
        return self.encode_embeddings(F.embedding(ids.to(self.token_embedding().device), self.token_embedding()))

    def encode_embeddings(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
        """The text encoder's hidden states [C, n, d] for input embeddings [C, n, d] (instead of ids, so gradients pass)."""
        return encode_token_embeddings(self.text_encoder, inputs_embeds)

    # ------------------------------------------------------------ images <-> model space

    def to_model_space(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] in [-1, 1] -> what the UNet denoises (VAE latents, or the pixels)."""
        if self.vae is None:
            return images
        latents = self.vae.encode(images.to(self.vae.dtype)).latent_dist.sample()
        return (latents - (self.vae.config.shift_factor or 0.0)) * self.vae.config.scaling_factor

    def from_model_space(self, sample: torch.Tensor) -> torch.Tensor:
        """Pixels [N, 3, H, W] in [-1, 1] from the diffusion space: VAE-decoded latents, or the sample itself without a VAE."""
        if self.vae is None:
            return sample.clamp(-1, 1)
        latents = sample / self.vae.config.scaling_factor + (self.vae.config.shift_factor or 0.0)
        return self.vae.decode(latents.to(self.vae.dtype)).sample.clamp(-1, 1)

    # ------------------------------------------------------------ training

    def loss(self, text_hidden: torch.Tensor, images: torch.Tensor, *, repeats: int = 1, generator: torch.Generator | None = None,
             clean: torch.Tensor | None = None) -> torch.Tensor:
        """``L_v``: MSE between the UNet's prediction and the scheduler's target, averaged.
        ``clean``: ``images`` already in model space (the training latent cache), else encoded here."""
        if clean is None:
            with torch.no_grad() if not self._vae_trains() else torch.enable_grad(), part("vae_encode"):
                clean = self.to_model_space(images)
        clean = clean.repeat_interleave(repeats, 0).float()
        text_hidden = text_hidden.repeat_interleave(repeats, 0)
        noise = torch.randn(clean.shape, generator=generator, device=clean.device)
        steps = self.noise_scheduler.config.num_train_timesteps
        timesteps = torch.randint(0, steps, (clean.shape[0],), generator=generator, device=clean.device)
        noisy = self.noise_scheduler.add_noise(clean, noise, timesteps)
        target = self._target(clean, noise, timesteps)
        unet_dtype = self.unet.dtype
        with part("unet"):
            prediction = self.unet(noisy.to(unet_dtype), timesteps, encoder_hidden_states=text_hidden.to(unet_dtype)).sample
        if not self.snr_gamma:
            return F.mse_loss(prediction.float(), target.float())
        per_sample = (prediction.float() - target.float()).pow(2).mean(dim=(1, 2, 3))
        return (per_sample * self._min_snr_weights(timesteps)).mean()

    def idle_loss(self) -> torch.Tensor:
        """A zero scalar whose gradient reaches every weight that ``loss`` trains (the text encoder
        with its token embedding, the UNet, a VAE that trains) and is exactly zero there: one blank
        caption and one blank photo at timestep 0, times 0. For a process whose micro-batch has no
        target photo while another process's has (FSDP, DeepSpeed: every process must give the same
        weights a gradient). Draws no noise (dropout aside: ``PhotoDialogModel`` keeps the random state)."""
        embedding = self.token_embedding()
        ids = torch.zeros(1, self.tokenizer.model_max_length, dtype=torch.long, device=embedding.device)
        hidden = self.encode_embeddings(F.embedding(ids, embedding))
        blank = torch.zeros(1, 3, self.image_size, self.image_size, device=hidden.device)
        if self.vae is not None:
            # Run the VAE even when it is frozen: the other process's loss encodes its photos, and under
            # DeepSpeed ZeRO-3 every module forward gathers its sharded weights collectively.
            clean = self.vae.encode(blank.to(self.vae.dtype)).latent_dist.mode()  # the mode: no random draw
            if not self._vae_trains():
                clean = clean.detach()
        else:
            size = self.image_size // self.latent_factor
            clean = blank.new_zeros((1, self.unet.config.in_channels, size, size))
        timesteps = torch.zeros(1, dtype=torch.long, device=clean.device)
        unet_dtype = self.unet.dtype
        with part("unet"):
            prediction = self.unet(clean.to(unet_dtype), timesteps, encoder_hidden_states=hidden.to(unet_dtype)).sample
        return prediction.float().sum() * 0

    def _min_snr_weights(self, timesteps: torch.Tensor) -> torch.Tensor:
        """Min-SNR-gamma loss weights (Hang et al., 2023): the easy, low-noise timesteps stop
        dominating the gradient, which speeds training up several times from scratch."""
        alphas = self.noise_scheduler.alphas_cumprod.to(timesteps.device)[timesteps]
        snr = alphas / (1 - alphas)
        clipped = snr.clamp(max=self.snr_gamma)
        if self.noise_scheduler.config.prediction_type == "v_prediction":
            return clipped / (snr + 1)
        return clipped / snr

    def _target(self, clean, noise, timesteps):
        kind = self.noise_scheduler.config.prediction_type
        if kind == "epsilon":
            return noise
        if kind == "v_prediction":
            return self.noise_scheduler.get_velocity(clean, noise, timesteps)
        if kind == "sample":
            return clean
        raise ValueError(f"unsupported prediction_type {kind!r} in the diffusion scheduler config")

    def _vae_trains(self) -> bool:
        return self.vae is not None and any(p.requires_grad for p in self.vae.parameters())

    # ------------------------------------------------------------ sampling

    @torch.inference_mode()
    def generate(
        self,
        texts: list[str],
        *,
        steps: int = 20,
        guidance_scale: float = 3.0,
        seed: int = 0,
        sampler: str = "ddim",
        text_hidden: torch.Tensor | None = None,
        progress=None,
    ) -> list:
        """Draw one photo per caption; returns PIL images. ``text_hidden`` overrides the texts' encoding."""
        if not texts and text_hidden is None:
            return []
        device = self.token_embedding().device
        cond, uncond = self._guidance_pair(texts, text_hidden, guidance_scale > 1.0)
        count = cond.shape[0]
        scheduler = self._sampler(sampler)
        scheduler.set_timesteps(steps, device=device)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        side = self.image_size // self.latent_factor
        channels = self.unet.config.in_channels
        sample = torch.randn((count, channels, side, side), generator=generator).to(device) * scheduler.init_noise_sigma
        step_options = _seeded_step_options(scheduler, generator)
        # the dtype once per draw: diffusers finds it by walking every parameter
        dtype = self.unet.dtype
        guided = uncond is not None
        conditioning = (torch.cat([uncond, cond]) if guided else cond).to(dtype)
        with _convolutions_for(sample, self.unet.config.block_out_channels[0]):
            for t in scheduler.timesteps:
                prediction = self._prediction(scheduler.scale_model_input(sample, t).to(dtype), t, conditioning,
                                              guidance_scale if guided else None)
                sample = scheduler.step(prediction, t, sample, **step_options).prev_sample
                if progress is not None:
                    progress()
        return [tensor_to_image(img) for img in self.from_model_space(sample)]

    def _guidance_pair(self, texts: list[str], text_hidden: torch.Tensor | None, guided: bool):
        """The captions' hidden states [C, n, d] and, for guidance, the empty caption's repeated
        [C, n, d] (else None). The empty caption is encoded once, beside the captions in one text
        encoder call: at the tiny generator's sizes each call's fixed cost is what counts."""
        if text_hidden is not None:
            uncond = self.encode_text([""]) if guided else None
            cond = text_hidden
        elif guided:
            hidden = self.encode_text([*texts, ""])
            cond, uncond = hidden[:-1], hidden[-1:]
        else:
            cond, uncond = self.encode_text(texts), None
        return cond, uncond.expand(cond.shape[0], -1, -1) if uncond is not None else None

    def _prediction(self, sample, t, conditioning, guidance_scale: float | None):
        """The UNet's prediction for ``sample`` [C, c, h, w]. Without guidance (None) ``conditioning``
        is the captions' hidden states [C, n, d]; with it, the empty caption's before the captions'
        [2C, n, d], combined by classifier-free guidance. Inputs already in the UNet's dtype."""
        if guidance_scale is None:
            return self.unet(sample, t, encoder_hidden_states=conditioning).sample.float()
        both = self.unet(torch.cat([sample, sample]), t, encoder_hidden_states=conditioning).sample.float()
        uncond_pred, cond_pred = both.chunk(2)
        return uncond_pred + guidance_scale * (cond_pred - uncond_pred)

    def _sampler(self, name: str):
        """A fresh diffusers scheduler of the registered sampler ``name`` on this generator's noise
        schedule; ``ValueError`` for a name not in ``registry.SAMPLERS``. Copied from one built per
        name (building one from its config costs more than a tiny generator's denoising step)."""
        if name not in SAMPLERS:
            raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS.names)}")
        if name not in self._samplers:
            self._samplers[name] = SAMPLERS.load(name).from_config(self.noise_scheduler.config)
        return copy.deepcopy(self._samplers[name])

    def set_memory_format(self, memory_format: torch.memory_format) -> "ImageGenerator":
        """The UNet's and VAE's weights in ``memory_format``; returns self.

        ``torch.channels_last`` for drawing: oneDNN (CPU) and cuDNN (GPU) convolutions are faster on
        NHWC weights, most of all the tiny generator's small ones, whose time is mostly fixed cost per
        call (``photodialog bench generator``: ms per photo). The values are unchanged. Saving with
        safetensors needs ``torch.contiguous_format`` back (``photodialog export`` does).
        """
        for module in (self.unet, self.vae):
            if module is not None:
                module.to(memory_format=memory_format)
        return self

    def ready_to_draw(self) -> "ImageGenerator":
        """In the layout drawing is fastest in (channels last, ``set_memory_format``); returns self.
        Every inference load calls it (``system.ready_for_inference``)."""
        return self.set_memory_format(torch.channels_last)
