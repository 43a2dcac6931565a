"""The bridge against a dense |V_LLM| x |V_SD| reference built naively from Eq. 8-11."""

from __future__ import annotations

import pytest
import torch

from photodialog.models.bridge import CaptionTokens, VocabularyBridge
from photodialog.models.stgs import straight_through_gumbel_softmax
from photodialog.models.tokenizers import normalized_token_strings

CAPTIONS = ["a red car at the beach", "a purple fish in the snow", "zzqx"]


def dense_matrix(mode, llm_tok, sd_tok, caption: CaptionTokens) -> torch.Tensor:
    """M for one caption, written straight from the paper's definitions."""
    v_llm, v_sd = len(llm_tok), len(sd_tok)
    m = torch.zeros(v_llm, v_sd, dtype=torch.float64)
    llm_special, sd_special = set(llm_tok.all_special_ids), set(sd_tok.all_special_ids)
    if mode == "exact":  # Eq. 8
        a, b = normalized_token_strings(llm_tok), normalized_token_strings(sd_tok)
        for i in range(v_llm):
            for j in range(v_sd):
                m[i, j] = float(bool(a[i]) and a[i] == b[j])
    elif mode == "sentence":  # Eq. 10
        t_llm = {i for i in caption.llm_ids if i not in llm_special}
        t_sd = {j for j in sd_tok(caption.text, add_special_tokens=False).input_ids if j not in sd_special}
        for i in t_llm:
            for j in t_sd:
                m[i, j] = 1.0
    elif mode == "word":
        for word in caption.text.split():
            for i in llm_tok(word, add_special_tokens=False).input_ids:
                for j in sd_tok(word, add_special_tokens=False).input_ids:
                    if i not in llm_special and j not in sd_special:
                        m[i, j] = 1.0
    return m


def dense_reference(mode, pooling, llm_tok, sd_tok, bridge, captions, one_hots, embedding):
    """R_SD @ E with R_SD = R~SD - sg[pool(R_LLM M)] + pool(R_LLM M) (Eq. 9, 11)."""
    out = []
    ids = bridge.sd_ids([c.text for c in captions])
    for c, caption in enumerate(captions):
        r_llm = one_hots[caption.rows].double()
        m = dense_matrix(mode, llm_tok, sd_tok, caption)
        pooled = (r_llm @ m).mean(0) if pooling == "mean" else (r_llm @ m).sum(0)
        r_tilde = torch.nn.functional.one_hot(ids[c], len(sd_tok)).double()
        r_sd = r_tilde - pooled.detach() + pooled
        out.append(r_sd @ embedding.double())
    return torch.stack(out)


@pytest.mark.parametrize("mode", ["sentence", "word", "exact"])
@pytest.mark.parametrize("pooling", ["mean", "sum"])
def test_bridge_equals_dense_reference(tokenizers, mode, pooling, consecutive_captions):
    llm_tok, sd_tok = tokenizers
    torch.manual_seed(0)
    bridge = VocabularyBridge(mode, llm_tok, sd_tok, pooling=pooling)
    captions, rows = consecutive_captions(llm_tok, CAPTIONS)
    logits = torch.randn(rows, len(llm_tok), dtype=torch.float64, requires_grad=True)
    embedding = torch.randn(len(sd_tok), 8, dtype=torch.float64, requires_grad=True)
    sample = straight_through_gumbel_softmax(logits, tau=0.8, generator=torch.Generator().manual_seed(1))
    plan = bridge.plan(captions)
    ours = bridge.inputs_embeds(plan, sample, embedding)
    reference = dense_reference(mode, pooling, llm_tok, sd_tok, bridge, captions, sample.one_hot(), embedding)

    # Forward: exactly the diffusion tokenizer's embeddings.
    assert torch.equal(ours, torch.nn.functional.embedding(plan.sd_input_ids, embedding))
    assert torch.allclose(ours, reference, atol=1e-10)

    weights = torch.randn_like(reference)
    g_ours = torch.autograd.grad((ours * weights).sum(), [logits, embedding], retain_graph=True)
    g_ref = torch.autograd.grad((reference * weights).sum(), [logits, embedding])
    assert torch.allclose(g_ours[0], g_ref[0], rtol=1e-5, atol=1e-6), (g_ours[0] - g_ref[0]).abs().max()
    assert torch.allclose(g_ours[1], g_ref[1], atol=1e-9)
    assert g_ours[0].abs().sum() > 0, "the bridge must pass gradient to the LLM logits"


def test_none_bridge_passes_no_gradient(tokenizers, consecutive_captions):
    llm_tok, sd_tok = tokenizers
    bridge = VocabularyBridge("none", llm_tok, sd_tok)
    captions, rows = consecutive_captions(llm_tok, CAPTIONS[:2])
    logits = torch.randn(rows, len(llm_tok), requires_grad=True)
    sample = straight_through_gumbel_softmax(logits, tau=1.0)
    out = bridge.inputs_embeds(bridge.plan(captions), sample, torch.randn(len(sd_tok), 4))
    assert not out.requires_grad


def test_caption_sharing_no_token_gets_no_gradient_and_is_counted(tokenizers):
    llm_tok, sd_tok = tokenizers
    bridge = VocabularyBridge("sentence", llm_tok, sd_tok)
    captions = [CaptionTokens(rows=[0, 1], llm_ids=[], text="")]
    plan = bridge.plan(captions)
    assert plan.unbridged == 1
    logits = torch.randn(2, len(llm_tok), requires_grad=True)
    out = bridge.inputs_embeds(plan, straight_through_gumbel_softmax(logits, 1.0), torch.randn(len(sd_tok), 4))
    assert out.shape[0] == 1
    (grad,) = torch.autograd.grad(out.sum(), logits, allow_unused=True)
    assert grad is None or torch.count_nonzero(grad) == 0


class SizeRecorder(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the number of elements of every tensor an op creates."""

    def __init__(self):
        super().__init__()
        self.sizes: list[int] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.sizes.append(t.numel())
        return out


def bridge_allocations(bridge, plan, v_llm, v_sd, rows, dim=8):
    soft = torch.softmax(torch.randn(rows, v_llm), -1).requires_grad_()
    embedding = torch.randn(v_sd, dim, requires_grad=True)
    from photodialog.models.stgs import STGSSample

    sample = STGSSample(tokens=torch.zeros(rows, dtype=torch.long), soft=soft)
    with SizeRecorder() as recorder:
        out = bridge.gradient_carrier(plan, sample, embedding)
        out.sum().backward()
    inputs = {soft.numel(), embedding.numel()}
    return sorted(s for s in recorder.sizes if s not in inputs)


@pytest.mark.parametrize("mode", ["sentence", "word"])
def test_dynamic_bridge_memory_does_not_grow_with_vocabulary(tokenizers, mode, consecutive_captions):
    """Apart from the gradients of its own inputs, nothing the bridge allocates depends on |V|."""
    llm_tok, sd_tok = tokenizers
    captions, rows = consecutive_captions(llm_tok, CAPTIONS[:2])
    bridge = VocabularyBridge(mode, llm_tok, sd_tok)
    plan = bridge.plan(captions)
    small = bridge_allocations(bridge, plan, len(llm_tok), len(sd_tok), rows)
    large = bridge_allocations(bridge, plan, 50 * len(llm_tok), 50 * len(sd_tok), rows)
    assert small == large
    # The largest is the gather of each caption row at each of the caption's own tokens.
    assert max(large) <= sum(len(c.rows) * len(set(c.llm_ids)) for c in captions)


def test_gathered_bag_sum_equals_embedding_bag_in_values_and_gradients():
    """The path CUDA takes for bf16/fp16 tables (no embedding_bag backward there) is the same sum."""
    from photodialog.models.bridge import gathered_bag_sum

    torch.manual_seed(0)
    ids = torch.tensor([3, 1, 3, 7, 0, 2])
    offsets = torch.tensor([0, 3, 3, 5])  # the second bag is empty
    results = []
    for path in ("embedding_bag", "gathered"):
        table = torch.randn(9, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_()
        weights = torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).requires_grad_()
        if path == "gathered":
            out = gathered_bag_sum(ids, table, offsets, weights)
        else:
            out = torch.nn.functional.embedding_bag(ids, table, offsets, mode="sum", per_sample_weights=weights)
        (out * torch.arange(20, dtype=torch.float64).view(4, 5)).sum().backward()
        results.append((out.detach(), table.grad, weights.grad))
    for reference, gathered in zip(*results):
        torch.testing.assert_close(gathered, reference)


def test_sentence_plan_reads_the_tokens_the_text_encoder_sees(tokenizers, consecutive_captions):
    """Eq. 10's T_SD comes from the caption's R~SD row: the content tokens of the caption, cut
    to the text encoder's length exactly as the caption is (here a caption longer than it)."""
    llm_tok, sd_tok = tokenizers
    bridge = VocabularyBridge("sentence", llm_tok, sd_tok)
    long_caption = " ".join(CAPTIONS[:2] * 4)
    assert len(sd_tok(long_caption, add_special_tokens=False).input_ids) > sd_tok.model_max_length, "must be cut"
    captions, _ = consecutive_captions(llm_tok, [CAPTIONS[0], long_caption])
    plan = bridge.plan(captions)
    ends = [*plan.caption_offsets.tolist()[1:], len(plan.entry_sd_ids)]
    for caption, start, end in zip(captions, plan.caption_offsets.tolist(), ends):
        assert set(plan.entry_sd_ids[start:end].tolist()) == set(bridge._content_sd_ids(caption.text))


def test_exact_bridge_copies_its_static_pairs_to_a_device_once(tokenizers, consecutive_captions):
    """The static matrix spans the vocabulary: one copy per device, reused every step."""
    llm_tok, sd_tok = tokenizers
    bridge = VocabularyBridge("exact", llm_tok, sd_tok)
    captions, _ = consecutive_captions(llm_tok, CAPTIONS)
    # The cached id set gives the count a fresh set would ("zzqx" matches nothing).
    matched = set(bridge.static_pairs[0].tolist())
    assert bridge.plan(captions).unbridged == sum(not any(i in matched for i in c.llm_ids) for c in captions) >= 1
    cpu = torch.device("cpu")
    first = bridge._static_pairs_on(cpu)
    assert all(a is b for a, b in zip(first, bridge._static_pairs_on(cpu)))
    assert all(torch.equal(a, b) for a, b in zip(first, bridge.static_pairs))
