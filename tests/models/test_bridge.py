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


# ------------------------------------------------------------ aligned: Eq. 8 position by position


def aligned_reference(llm_tok, sd_tok, bridge, captions, one_hots, embedding):
    """R_SD[p] = R~SD[p] - sg[X_p] + X_p, X_p = sum of R_LLM[i] M over the LLM positions i of p's word,
    M dense (Eq. 8); the words' positions from tokenizing each word alone."""
    m = dense_matrix("exact", llm_tok, sd_tok, None)
    ids = bridge.sd_ids([c.text for c in captions])
    out = []
    for c, caption in enumerate(captions):
        words = caption.text.split()
        llm_words = [i for i, w in enumerate(words) for _ in llm_tok(w, add_special_tokens=False).input_ids]
        sd_special = set(sd_tok.all_special_ids)  # CLIP's unknown token is its end token: no word's
        sd_words = [i for i, w in enumerate(words) for j in sd_tok(w, add_special_tokens=False).input_ids if j not in sd_special]
        assert len(llm_words) == len(caption.rows), "the reference needs word-by-word tokenization to match"
        r_llm = one_hots[caption.rows].double() @ m
        r_sd = torch.nn.functional.one_hot(ids[c], len(sd_tok)).double()
        for p, word in enumerate(sd_words[: ids.shape[1] - 2], start=1):
            x = r_llm[[i for i, w in enumerate(llm_words) if w == word]].sum(0)
            r_sd[p] = r_sd[p] - x.detach() + x
        out.append(r_sd @ embedding.double())
    return torch.stack(out)


def test_aligned_bridge_equals_dense_reference(tokenizers, consecutive_captions):
    llm_tok, sd_tok = tokenizers
    bridge = VocabularyBridge("aligned", llm_tok, sd_tok)
    captions, rows = consecutive_captions(llm_tok, CAPTIONS)
    logits = torch.randn(rows, len(llm_tok), dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    embedding = torch.randn(len(sd_tok), 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    sample = straight_through_gumbel_softmax(logits, tau=0.8, generator=torch.Generator().manual_seed(1))
    plan = bridge.plan(captions)
    ours = bridge.inputs_embeds(plan, sample, embedding)
    reference = aligned_reference(llm_tok, sd_tok, bridge, captions, sample.one_hot(), embedding)
    # Forward: exactly the diffusion tokenizer's embeddings (Eq. 11's second straight-through step).
    assert torch.equal(ours, torch.nn.functional.embedding(plan.sd_input_ids, embedding))
    weights = torch.randn_like(reference)
    g_ours = torch.autograd.grad((ours * weights).sum(), [logits, embedding], retain_graph=True)
    g_ref = torch.autograd.grad((reference * weights).sum(), [logits, embedding])
    # STGS works in float32 whatever the logits' dtype: float32 closeness on the logits
    torch.testing.assert_close(g_ours[0], g_ref[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_ours[1], g_ref[1], rtol=1e-5, atol=1e-6)
    assert g_ours[0].abs().sum() > 0
    assert plan.unbridged == 0  # zzqx has no matched token of its own, but every vocabulary entry is bridged


def soft_gradient(mode, tokenizers, caption_text, seed=0):
    """dL/d(soft sample) of the caption's rows through the bridge, for a random loss on its output."""
    from photodialog.models.stgs import STGSSample

    llm_tok, sd_tok = tokenizers
    ids = llm_tok(caption_text, add_special_tokens=False).input_ids
    bridge = VocabularyBridge(mode, llm_tok, sd_tok, pooling="sum")
    plan = bridge.plan([CaptionTokens(rows=list(range(len(ids))), llm_ids=ids, text=caption_text)])
    soft = torch.softmax(torch.randn(len(ids), len(llm_tok), dtype=torch.float64, generator=torch.Generator().manual_seed(seed)), -1)
    soft.requires_grad_()
    embedding = torch.randn(len(sd_tok), 8, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1))
    out = bridge.inputs_embeds(plan, STGSSample(tokens=torch.tensor(ids), soft=soft), embedding)
    weights = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 2))
    (grad,) = torch.autograd.grad((out * weights).sum(), soft)
    return ids, grad, llm_tok


def test_aligned_bridge_gives_each_vocabulary_entry_its_own_gradient(tokenizers):
    """The sentence bridge sends a caption row one scalar for its own token set (two distinct values);
    the aligned one gives each vocabulary entry the gradient of its own SD tokens at the positions of
    that row's word."""
    ids, sentence, llm_tok = soft_gradient("sentence", tokenizers, "a red car at the beach")
    assert all(len(set(row.tolist())) <= 2 for row in sentence)
    _, aligned, _ = soft_gradient("aligned", tokenizers, "a red car at the beach")
    for row in aligned:
        assert len(set(row.tolist())) > 10  # many entries, many gradients
    # At every position, two entries that stand for different SD tokens get different gradients.
    strings = normalized_token_strings(llm_tok)
    first, second = (llm_tok.convert_tokens_to_ids(t) for t in ("▁th", "at"))
    sd_strings = set(normalized_token_strings(tokenizers[1]))
    assert strings[first] == "th" and strings[second] == "at" and {"th", "at"} <= sd_strings
    assert all(row[first] != row[second] for row in aligned)
    assert all(row[first] != 0 for row in aligned)


def test_aligned_bridge_places_a_word_break_token_with_the_word_it_starts(tokenizers):
    """A lone ``▁`` (SentencePiece's word start) belongs to the word that follows it."""
    llm_tok, sd_tok = tokenizers
    bridge = VocabularyBridge("aligned", llm_tok, sd_tok)
    text = "wow, what a lovely red car at the beach!"
    ids = llm_tok(text, add_special_tokens=False).input_ids
    words = bridge.word_of_llm_positions(ids)
    tokens = llm_tok.convert_ids_to_tokens(ids)
    assert len(words) == len(ids) and words == sorted(words) and set(words) == set(range(len(text.split())))
    for k, token in enumerate(tokens):
        if token == "▁":
            assert words[k] == words[k + 1]
    sd_row = bridge.sd_ids([text])[0]
    placed = bridge.word_of_sd_positions(text, sd_row)
    content = [p for p, j in enumerate(sd_row.tolist()) if j not in bridge.sd_specials]
    assert sorted(placed) == content and sorted(set(placed.values())) == list(range(len(text.split())))


def test_aligned_bridge_has_no_per_caption_carrier(tokenizers, consecutive_captions):
    llm_tok, sd_tok = tokenizers
    bridge = VocabularyBridge("aligned", llm_tok, sd_tok)
    captions, rows = consecutive_captions(llm_tok, CAPTIONS[:1])
    with pytest.raises(ValueError, match="aligned_carrier"):
        bridge.gradient_carrier(bridge.plan(captions), straight_through_gumbel_softmax(torch.randn(rows, len(llm_tok)), 1.0),
                                torch.randn(len(sd_tok), 4))


# ------------------------------------------------------------ the authors' estimator, by hand


def test_authors_estimator_gradient_equals_the_hand_derived_value(tokenizers):
    """The authors' code: plain straight-through (argmax one-hot + softmax - sg[softmax], no noise,
    tau 1), the caption's LLM tokens linked to all its CLIP tokens (0/1), one-hots summed over
    positions first (model.gumbel_noise=false, bridge=sentence, pooling=sum, tau 1). Then every CLIP
    position p gets the same carrier, so with a loss sum_p W[p] . out[p] and
    c = (sum_p W[p]) . (sum_{j in T_SD} E[j]), the gradient on logit l at caption position i is

        c * s_il * (1[l in T_LLM] - sum_{k in T_LLM} s_ik),   s_i = softmax(logits_i)."""
    llm_tok, sd_tok = tokenizers
    text = "a red car at the beach"
    ids = llm_tok(text, add_special_tokens=False).input_ids
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(len(ids), len(llm_tok), dtype=torch.float64, generator=generator)
    base[torch.arange(len(ids)), ids] += 6.0  # the LLM's argmax caption is the text
    logits = base.clone().requires_grad_()
    sample = straight_through_gumbel_softmax(logits, tau=1.0, noise=False)
    assert sample.tokens.tolist() == ids  # the argmax, no noise
    assert llm_tok.decode(sample.tokens.tolist(), skip_special_tokens=True).strip() == text
    bridge = VocabularyBridge("sentence", llm_tok, sd_tok, pooling="sum")
    plan = bridge.plan([CaptionTokens(rows=list(range(len(ids))), llm_ids=sample.tokens.tolist(), text=text)])
    embedding = torch.randn(len(sd_tok), 6, dtype=torch.float64, generator=generator)
    out = bridge.inputs_embeds(plan, sample, embedding)
    weights = torch.randn(out.shape, dtype=torch.float64, generator=generator)
    (grad,) = torch.autograd.grad((out * weights).sum(), logits)

    t_llm = sorted(set(ids) - set(llm_tok.all_special_ids))
    t_sd = sorted(set(sd_tok(text, add_special_tokens=False).input_ids) - set(sd_tok.all_special_ids))
    c = weights[0].sum(0) @ embedding[t_sd].sum(0)
    s = torch.softmax(base, -1)
    in_t = torch.zeros(len(llm_tok), dtype=torch.float64)
    in_t[t_llm] = 1.0
    hand = c * s * (in_t - s[:, t_llm].sum(1, keepdim=True))
    torch.testing.assert_close(grad, hand, rtol=1e-5, atol=1e-7)  # STGS's softmax is float32
    assert torch.equal(out, torch.nn.functional.embedding(plan.sd_input_ids, embedding))
