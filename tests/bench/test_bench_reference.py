"""The paper-style matrix baselines compute exactly what the bridge computes (values and gradients)."""

from __future__ import annotations

import pytest
import torch

from photodialog.bench.reference import dense_matrix, matrix_inputs_embeds, matrix_nonzeros, sparse_matrices
from photodialog.models.bridge import VocabularyBridge
from photodialog.models.stgs import straight_through_gumbel_softmax

TEXTS = ["a red car at the beach", "a purple fish in the snow"]


@pytest.mark.parametrize("mode", ["sentence", "word", "exact"])
@pytest.mark.parametrize("kind", ["sparse", "dense"])
def test_matrix_baseline_matches_the_bridge(small_tokenizers, mode, kind, consecutive_captions):
    llm_tok, sd_tok = small_tokenizers
    torch.manual_seed(0)
    bridge = VocabularyBridge(mode, llm_tok, sd_tok)
    captions, rows = consecutive_captions(llm_tok, TEXTS)
    logits = torch.randn(rows, len(llm_tok), dtype=torch.float64, requires_grad=True)
    embedding = torch.randn(len(sd_tok), 6, dtype=torch.float64, requires_grad=True)
    sample = straight_through_gumbel_softmax(logits, tau=0.7, generator=torch.Generator().manual_seed(1))
    plan = bridge.plan(captions)
    shape = (len(llm_tok), len(sd_tok))
    nonzeros = [matrix_nonzeros(bridge, c) for c in captions]
    assert all(len(k) > 0 for k, _ in nonzeros), "the test captions must bridge"
    if kind == "sparse":
        matrices = sparse_matrices(nonzeros, shape)
    else:
        matrices = [dense_matrix(n, shape) for n in nonzeros]  # float32, like the STGS sample
    ours = bridge.inputs_embeds(plan, sample, embedding)
    theirs = matrix_inputs_embeds(matrices, captions, plan.sd_input_ids, sample, embedding)
    assert torch.allclose(ours, theirs, atol=1e-6)
    weights = torch.randn_like(ours)
    g_ours = torch.autograd.grad((ours * weights).sum(), [logits, embedding], retain_graph=True)
    g_theirs = torch.autograd.grad((theirs * weights).sum(), [logits, embedding])
    for a, b in zip(g_ours, g_theirs):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    assert g_ours[0].abs().sum() > 0


def test_sentence_matrix_is_the_product_of_the_two_token_sets(small_tokenizers, consecutive_captions):
    llm_tok, sd_tok = small_tokenizers
    bridge = VocabularyBridge("sentence", llm_tok, sd_tok)
    caption = consecutive_captions(llm_tok, TEXTS)[0][0]
    llm_ids, sd_ids = matrix_nonzeros(bridge, caption)
    t_llm, t_sd = set(llm_ids.tolist()), set(sd_ids.tolist())
    assert len(llm_ids) == len(t_llm) * len(t_sd)
    assert t_llm <= set(caption.llm_ids)
