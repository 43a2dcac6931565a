"""The paper's way to apply the transformation matrix, as baselines for the bridge benchmark.

For each caption: build ``M`` (|V_LLM| x |V_SD|), multiply the caption's straight-through
one-hot rows ``R_LLM @ M``, pool over positions, apply Eq. 11 with the diffusion tokenizer's
one-hots ``R~SD`` (n x |V_SD|) and feed ``R_SD @ E``. ``M`` is a ``torch.sparse_coo`` tensor (the
paper's implementation, §2.4.2) or a dense matrix. Both give the same values and gradients
as ``VocabularyBridge.inputs_embeds`` (checked by the benchmark and the tests).

``M``'s nonzeros are read from the captions and tokenizers straight from the definitions
(Eq. 8 / Eq. 10 / per word), not from the bridge's plan, so the two do not share a bug.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from photodialog.models.bridge import CaptionTokens, VocabularyBridge
from photodialog.models.stgs import STGSSample


def matrix_nonzeros(bridge: VocabularyBridge, caption: CaptionTokens) -> tuple[torch.Tensor, torch.Tensor]:
    """(LLM ids, SD ids) of the entries of the caption's ``M`` that are 1."""
    if bridge.mode == "exact":  # Eq. 8: the static matrix, the same for every caption
        return bridge.static_pairs
    llm_special, sd_special = set(bridge.llm_tokenizer.all_special_ids), set(bridge.sd_tokenizer.all_special_ids)

    def sd_ids(text: str) -> set[int]:
        # The tokens the text encoder sees: cut to its length, less the start and end tokens.
        ids = bridge.sd_tokenizer(text, add_special_tokens=False, truncation=True, max_length=bridge.sd_max_length - 2).input_ids
        return {j for j in ids if j not in sd_special}

    pairs: set[tuple[int, int]] = set()
    if bridge.mode == "sentence":  # Eq. 10: every LLM token of the caption to every SD token of it
        llm = {i for i in caption.llm_ids if i not in llm_special}
        pairs = {(i, j) for i in llm for j in sd_ids(caption.text)}
    elif bridge.mode == "word":  # the same, word by word
        for word in caption.text.split():
            llm = {i for i in bridge.llm_tokenizer(word, add_special_tokens=False).input_ids if i not in llm_special}
            pairs |= {(i, j) for i in llm for j in sd_ids(word)}
    rows = sorted(pairs)
    return torch.tensor([i for i, _ in rows], dtype=torch.long), torch.tensor([j for _, j in rows], dtype=torch.long)


def sparse_matrices(nonzeros, shape: tuple[int, int], device=None, dtype=torch.float32) -> list[torch.Tensor]:
    """One coalesced ``torch.sparse_coo`` M per caption."""
    out = []
    for llm_ids, sd_ids in nonzeros:
        indices = torch.stack([llm_ids, sd_ids]).to(device)
        values = torch.ones(indices.shape[1], dtype=dtype, device=device)
        out.append(torch.sparse_coo_tensor(indices, values, shape, check_invariants=False).coalesce())
    return out


def dense_matrix(nonzeros: tuple[torch.Tensor, torch.Tensor], shape: tuple[int, int], device=None, dtype=torch.float32) -> torch.Tensor:
    """The full |V_LLM| x |V_SD| matrix of one caption (GiBs at the paper's sizes)."""
    matrix = torch.zeros(shape, dtype=dtype, device=device)
    llm_ids, sd_ids = nonzeros
    matrix[llm_ids.to(device), sd_ids.to(device)] = 1.0
    return matrix


def matrix_inputs_embeds(matrices, captions: list[CaptionTokens], sd_input_ids: torch.Tensor, sample: STGSSample,
                         embedding: torch.Tensor, *, pooling: str = "mean") -> torch.Tensor:
    """``R_SD @ E`` for every caption with explicit matrices (Eq. 9 and 11, literally). [C, n, d]

    ``matrices`` is a list of M (sparse or dense), or a callable ``index -> M`` that builds each
    one when needed (so that only one dense M is alive before autograd saves it).
    """
    r_llm = sample.one_hot()  # the straight-through one-hot rows, dense over |V_LLM|
    sd_vocab = embedding.shape[0]
    rows_device = r_llm.device
    outputs = []
    for index, caption in enumerate(captions):
        matrix = matrices(index) if callable(matrices) else matrices[index]
        rows = r_llm[torch.tensor(caption.rows, dtype=torch.long, device=rows_device)]
        product = rows @ matrix  # [m, |V_SD|]
        pooled = product.mean(0) if pooling == "mean" and len(caption.rows) else product.sum(0)
        r_tilde = F.one_hot(sd_input_ids[index], sd_vocab).to(pooled.dtype)
        r_sd = r_tilde - pooled.detach() + pooled  # Eq. 11
        outputs.append(r_sd.to(embedding.dtype) @ embedding)
    return torch.stack(outputs)
