"""The vocabulary bridge (paper §2.4.2, Eq. 8-11): from LLM one-hots to the text encoder's input.

For a caption with straight-through rows ``R_LLM`` (m x |V_LLM|), a transformation matrix ``M``
(|V_LLM| x |V_SD|) and the diffusion tokenizer's one-hots ``R~SD`` of the caption text (n x |V_SD|),
Eq. 11 gives ``R_SD = R~SD - sg[pool(R_LLM M)] + pool(R_LLM M)`` and the text encoder reads
``R_SD @ E`` (E: its token embedding). Its forward value is ``E[sd_ids]`` exactly; the pooled term
only carries gradient. Writing ``q_k = pool_i R_LLM[i, k]`` and ``F_k = sum_{j: M[k, j] = 1} E_j``::

    R_SD @ E = E[sd_ids] + sum_k (q_k - sg[q_k]) * F_k      (added to every one of the n positions)

so the bridge gathers the few ``R_LLM`` columns the caption's matrix touches and sums a few
embedding rows. No |V_LLM| x |V_SD| tensor, and for the dynamic matrices nothing of vocabulary
size, is ever built. Modes:

* ``sentence`` (Eq. 10, the paper's default): M = T_LLM x T_SD, the caption's two token sets.
* ``word``: M = union over the caption's words of T_LLM(word) x T_SD(word).
* ``exact`` (Eq. 8): the static matrix of tokens whose text is equal (ignoring case and the
  word-boundary marks); it touches the whole vocabulary, so it costs O(|V|) per caption.
* ``aligned`` (beyond the paper): Eq. 8's static matrix applied position by position, with no
  pooling: each SD position of the caption reads the straight-through rows of the LLM positions
  of the same word, ``R_SD[p] = R~SD[p] - sg[X_p] + X_p`` with ``X_p = sum_{i in word(p)} R_LLM[i] M``.
  Every LLM vocabulary entry at every caption position gets its own gradient (entry ``k`` the
  gradient of the SD tokens whose text is ``k``'s), so L_v can rank words, which a pooled
  sentence matrix cannot (it gives each caption one scalar). Costs one [rows, |V_LLM|] x
  [|V_LLM|, d] product per batch. How positions align is ``VocabularyBridge.word_of_llm_positions``
  and ``word_of_sd_positions``.
* ``none``: no gradient (the pipeline): the text encoder reads ``E[sd_ids]``.

A mode whose matrix is built per caption is a function ``(bridge, caption, sd_row) -> Blocks``
(``sentence_blocks``, ``word_blocks``) registered in ``photodialog.registry.BRIDGES``; the plan,
the gather and Eq. 11 are the same for every such mode.
"""

from __future__ import annotations

from collections import defaultdict
from difflib import SequenceMatcher
from itertools import accumulate
from dataclasses import dataclass, field

import torch

from photodialog.models.stgs import STGSSample
from photodialog.models.tokenizers import normalized_token_strings
from photodialog.registry import BRIDGES

# (LLM token ids, SD token ids) blocks of one caption's matrix M: M[k, j] = 1 for k, j in a block.
Blocks = list[tuple[list[int], list[int]]]
WORD_CACHE_LIMIT = 100_000  # words whose SD tokens the aligned bridge keeps


@dataclass
class CaptionTokens:
    """One caption to bridge: which STGS rows are its positions, its LLM token ids, its text."""

    rows: list[int]
    llm_ids: list[int]
    text: str


@dataclass
class BridgePlan:
    """Index tensors for one batch of captions, built on the CPU from token ids."""

    sd_input_ids: torch.Tensor  # [C, n]: R~SD as ids
    # Gathers of R_LLM[row, token], each summed into a group; a group adds (s - sg s) * sum E[J].
    gather_rows: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    gather_tokens: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    gather_groups: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    group_scale: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    # One entry per (group, SD token) pair, grouped by caption: E[entry_sd_ids] weighted by the
    # entry's group carrier and summed per caption (one embedding_bag, bags = captions).
    entry_sd_ids: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    entry_group: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    caption_offsets: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    # exact mode: rows of each caption and the pooling scale, for the full-vocabulary product
    caption_rows: list[list[int]] = field(default_factory=list)
    caption_scale: list[float] = field(default_factory=list)
    # aligned mode: STGS row ``align_rows[e]`` reaches flat SD position ``align_slots[e]`` (caption * n + p)
    align_rows: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    align_slots: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    unbridged: int = 0  # captions whose matrix is empty: they get no gradient

    def to(self, device) -> "BridgePlan":
        """Move every tensor field to ``device`` (in place); returns the plan."""
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(self, name, value.to(device))
        return self


class VocabularyBridge:
    """Builds per-batch plans and applies Eq. 11 to the diffusion text encoder's input."""

    def __init__(self, mode: str, llm_tokenizer, sd_tokenizer, *, pooling: str = "mean"):
        """``mode`` is a name of ``registry.BRIDGES``; ``pooling`` Eq. 11's pool over a caption's
        positions (``mean``, the paper, or ``sum``). Raises ``ValueError`` for another value."""
        if mode not in BRIDGES:
            raise ValueError(f"bridge must be one of {BRIDGES.names}, got {mode!r}")
        # The dynamic modes' block builder (None for exact and none, which the class handles itself).
        self.blocks = BRIDGES.load(mode) if BRIDGES.entry(mode).target else None
        if pooling not in ("mean", "sum"):
            raise ValueError(f"pooling must be 'mean' or 'sum', got {pooling!r}")
        self.mode, self.pooling = mode, pooling
        self.llm_tokenizer, self.sd_tokenizer = llm_tokenizer, sd_tokenizer
        self.sd_max_length = sd_tokenizer.model_max_length
        self.llm_specials = set(llm_tokenizer.all_special_ids)
        self.sd_specials = set(sd_tokenizer.all_special_ids)
        static = mode in ("exact", "aligned")
        self.static_pairs = self._static_pairs() if static else None
        # exact mode reads the matched-id set for every caption and the pairs every step: build the
        # set once here, and copy the pairs to each device once (``_static_pairs_on``).
        self._static_llm_ids = set(self.static_pairs[0].tolist()) if static else set()
        self._word_sd_ids: dict[str, list[int]] = {}  # aligned mode: each word's SD tokens, tokenized once
        self._static_pairs_by_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    # ------------------------------------------------------------ plans (CPU, ids only)

    def sd_ids(self, texts: list[str]) -> torch.Tensor:
        """R~SD: the diffusion tokenizer's ids, padded/truncated to its length as pipelines do."""
        return self.sd_tokenizer(texts, padding="max_length", max_length=self.sd_max_length, truncation=True, return_tensors="pt").input_ids

    def plan(self, captions: list[CaptionTokens]) -> BridgePlan:
        """The index tensors of Eq. 11 for ``captions`` (CPU, from token ids only; move with ``.to``)."""
        plan = BridgePlan(sd_input_ids=self.sd_ids([c.text for c in captions]))
        if self.mode in ("none",) or not captions:
            return plan
        if self.mode == "exact":
            plan.caption_rows = [c.rows for c in captions]
            plan.caption_scale = [self._scale(c) for c in captions]
            plan.unbridged = sum(1 for c in captions if not self._has_static_match(c))
            return plan
        if self.mode == "aligned":
            self._fill_alignment(plan, captions)
            return plan
        groups = []  # (caption index, llm ids, sd ids)
        for index, caption in enumerate(captions):
            caption_groups = self.blocks(self, caption, plan.sd_input_ids[index])
            plan.unbridged += not caption_groups
            groups += [(index, k, j) for k, j in caption_groups]
        self._fill_groups(plan, captions, groups)
        return plan

    def _scale(self, caption: CaptionTokens) -> float:
        return 1.0 / max(len(caption.rows), 1) if self.pooling == "mean" else 1.0

    def content_sd_ids(self, text: str) -> list[int]:
        """The diffusion tokenizer's ids of ``text`` without special tokens (cut to its length less two)."""
        ids = self.sd_tokenizer(text, add_special_tokens=False, truncation=True, max_length=self.sd_max_length - 2).input_ids
        return [i for i in ids if i not in self.sd_specials]

    _content_sd_ids = content_sd_ids  # its earlier private name

    def _fill_groups(self, plan: BridgePlan, captions: list[CaptionTokens], groups) -> None:
        rows, tokens, group_ids, sd_ids, entry_group = [], [], [], [], []
        entries_per_caption = [0] * len(captions)
        for g, (index, llm, sd) in enumerate(groups):
            for row in captions[index].rows:
                rows += [row] * len(llm)
                tokens += llm
                group_ids += [g] * len(llm)
            sd_ids += sd
            entry_group += [g] * len(sd)
            entries_per_caption[index] += len(sd)
        offsets = [0, *accumulate(entries_per_caption)][:-1]  # groups come caption by caption
        long = lambda values: torch.tensor(values, dtype=torch.long)  # noqa: E731
        plan.gather_rows, plan.gather_tokens, plan.gather_groups = long(rows), long(tokens), long(group_ids)
        plan.group_scale = torch.tensor([self._scale(captions[index]) for index, _, _ in groups])
        plan.entry_sd_ids, plan.entry_group, plan.caption_offsets = long(sd_ids), long(entry_group), long(offsets)

    # ------------------------------------------------------------ aligned mode: which positions meet

    def word_of_llm_positions(self, llm_ids: list[int]) -> list[int]:
        """The index of the word (in ``text.split()`` of the decoded caption) each LLM position writes.

        A position belongs to the word its decoded prefix ends in; a position whose prefix ends in
        a word break (a lone ``▁``, a special token, nothing yet) belongs to the word that follows,
        the one it starts. Decoding prefixes works for any tokenizer (SentencePiece, byte-level BPE).
        """
        words = []
        for end in range(1, len(llm_ids) + 1):
            text = self.llm_tokenizer.decode(llm_ids[:end], skip_special_tokens=True)
            count = len(text.split())
            words.append(count if not text.strip() or text[-1].isspace() else count - 1)
        return words

    def word_of_sd_positions(self, text: str, sd_row: torch.Tensor) -> dict[int, int]:
        """``{position in sd_row: word index}`` for the caption's SD content positions.

        Each whitespace word of ``text`` is tokenized alone; the concatenation is matched to the
        row's content tokens (``difflib``: equal for a CLIP tokenizer, which splits at whitespace
        first; a truncated row simply ends early). A position no word's tokens match gets none.
        """
        labelled = []
        if len(self._word_sd_ids) > WORD_CACHE_LIMIT:  # sampled captions make up words without end
            self._word_sd_ids.clear()
        for index, word in enumerate(text.split()):
            if word not in self._word_sd_ids:
                self._word_sd_ids[word] = self.content_sd_ids(word)
            labelled += [(j, index) for j in self._word_sd_ids[word]]
        row = sd_row.tolist()
        content = [p for p, j in enumerate(row) if j not in self.sd_specials]
        matcher = SequenceMatcher(None, [j for j, _ in labelled], [row[p] for p in content], autojunk=False)
        found = {}
        for a, b, size in matcher.get_matching_blocks():
            for offset in range(size):
                found[content[b + offset]] = labelled[a + offset][1]
        return found

    def _fill_alignment(self, plan: BridgePlan, captions: list[CaptionTokens]) -> None:
        """The (STGS row, SD slot) pairs of every caption: each SD position with each LLM position of its word."""
        n = plan.sd_input_ids.shape[1]
        rows, slots = [], []
        for c, caption in enumerate(captions):
            by_word: dict[int, list[int]] = defaultdict(list)
            for row, word in zip(caption.rows, self.word_of_llm_positions(caption.llm_ids)):
                by_word[word].append(row)
            before = len(rows)
            for position, word in sorted(self.word_of_sd_positions(caption.text, plan.sd_input_ids[c]).items()):
                rows += by_word.get(word, [])
                slots += [c * n + position] * len(by_word.get(word, []))
            plan.unbridged += len(rows) == before
        plan.align_rows = torch.tensor(rows, dtype=torch.long)
        plan.align_slots = torch.tensor(slots, dtype=torch.long)

    def _static_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 8's nonzero entries (llm id, sd id): tokens whose normalised text is equal."""
        sd_by_text: dict[str, list[int]] = defaultdict(list)
        for j, text in enumerate(normalized_token_strings(self.sd_tokenizer)):
            if text:
                sd_by_text[text].append(j)
        pairs = [(k, j) for k, text in enumerate(normalized_token_strings(self.llm_tokenizer)) if text for j in sd_by_text.get(text, ())]
        k, j = zip(*pairs) if pairs else ((), ())
        return torch.tensor(k, dtype=torch.long), torch.tensor(j, dtype=torch.long)

    def _has_static_match(self, caption: CaptionTokens) -> bool:
        return any(i in self._static_llm_ids for i in caption.llm_ids)

    def _static_pairs_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``static_pairs`` on ``device``, copied there once (they cover the whole vocabulary)."""
        if device not in self._static_pairs_by_device:
            self._static_pairs_by_device[device] = tuple(t.to(device) for t in self.static_pairs)
        return self._static_pairs_by_device[device]

    # ------------------------------------------------------------ Eq. 11 (autograd)

    def gradient_carrier(self, plan: BridgePlan, sample: STGSSample, embedding: torch.Tensor) -> torch.Tensor:
        """``sum_k (q_k - sg[q_k]) F_k`` per caption: exactly zero forward, Eq. 11's gradient backward. [C, d]"""
        captions, dim = plan.sd_input_ids.shape[0], embedding.shape[1]
        if self.mode == "none" or captions == 0:
            return embedding.new_zeros(captions, dim)
        if self.mode == "aligned":
            raise ValueError("the aligned bridge has no per-caption carrier: it differs per position (aligned_carrier)")
        if self.mode == "exact":
            return self._static_carrier(plan, sample, embedding)
        values = sample.gather(plan.gather_rows, plan.gather_tokens)
        group_sum = torch.zeros(len(plan.group_scale), device=values.device, dtype=values.dtype).index_add(0, plan.gather_groups, values)
        pooled = group_sum * plan.group_scale.to(values.dtype)
        carrier = (pooled - pooled.detach()).to(embedding.dtype)
        return weighted_bag_sum(plan.entry_sd_ids, embedding, plan.caption_offsets, carrier[plan.entry_group])

    def _static_carrier(self, plan: BridgePlan, sample: STGSSample, embedding: torch.Tensor) -> torch.Tensor:
        llm_ids, sd_ids = self._static_pairs_on(embedding.device)
        # pool[c, i] = the pooling weight of STGS row i in caption c (mean or sum over its rows).
        pool = sample.soft.new_zeros(len(plan.caption_rows), sample.soft.shape[0])
        for c, (rows, scale) in enumerate(zip(plan.caption_rows, plan.caption_scale)):
            pool[c, rows] = scale
        pooled = pool @ sample.soft  # the one-hots' part is constant: only the soft part carries gradient
        pooled = pooled - pooled.detach()
        pooled_sd = pooled.new_zeros(pooled.shape[0], embedding.shape[0]).index_add(1, sd_ids, pooled[:, llm_ids])
        return pooled_sd.to(embedding.dtype) @ embedding

    def aligned_carrier(self, plan: BridgePlan, sample: STGSSample, embedding: torch.Tensor) -> torch.Tensor:
        """``sum_{i in word(p)} (R_LLM[i] - sg R_LLM[i]) M E`` at every SD position p: exactly zero
        forward, the aligned bridge's gradient backward. [C, n, d]

        ``M E`` (|V_LLM| x d: row k the sum of the embeddings of the SD tokens whose text is k's) is
        built from the static pairs each call, so the gradient reaches ``embedding`` as in Eq. 8.
        """
        captions, n = plan.sd_input_ids.shape
        soft = sample.soft
        llm_ids, sd_ids = self._static_pairs_on(embedding.device)
        mapped = soft.new_zeros(soft.shape[1], embedding.shape[1]).index_add(0, llm_ids, embedding.index_select(0, sd_ids).to(soft.dtype))
        rows = (soft - soft.detach()) @ mapped  # [m, d]: exactly zero forward
        out = rows.new_zeros(captions * n, embedding.shape[1]).index_add(0, plan.align_slots, rows.index_select(0, plan.align_rows))
        return out.view(captions, n, -1).to(embedding.dtype)

    def inputs_embeds(self, plan: BridgePlan, sample: STGSSample | None, embedding: torch.Tensor) -> torch.Tensor:
        """``R_SD @ E`` for every caption: [C, n, d], forward value ``E[R~SD ids]``."""
        base = torch.nn.functional.embedding(plan.sd_input_ids, embedding)
        if sample is None or self.mode == "none":
            return base
        if self.mode == "aligned":
            return base.add_(self.aligned_carrier(plan, sample, embedding))
        # In place: embedding's backward needs only the ids, so no second [C, n, d] buffer.
        return base.add_(self.gradient_carrier(plan, sample, embedding)[:, None, :])


def weighted_bag_sum(ids: torch.Tensor, table: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``out[b] = sum_{e in bag b} weights[e] * table[ids[e]]``; bags start at ``offsets``. [bags, d]

    One ``embedding_bag`` where its backward exists. CUDA has no bf16/fp16 backward for
    ``per_sample_weights``, so there the rows are gathered (one [entries, d] buffer, as small as
    the captions) and summed per bag with ``index_add``: the same values and gradients.
    """
    if not (table.is_cuda and table.dtype in (torch.bfloat16, torch.float16)):
        return torch.nn.functional.embedding_bag(ids, table, offsets, mode="sum", per_sample_weights=weights)
    return gathered_bag_sum(ids, table, offsets, weights)


def gathered_bag_sum(ids: torch.Tensor, table: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``weighted_bag_sum`` without ``embedding_bag``: gather the rows, weight them, ``index_add`` per bag.

    Used for bfloat16/float16 on CUDA, where ``embedding_bag`` has no backward. ``ids`` [N],
    ``table`` [V, d], ``offsets`` [C] (bag starts), ``weights`` [N]; returns [C, d].
    """
    ends = torch.cat([offsets[1:], offsets.new_tensor([len(ids)])])
    bag_of_entry = torch.repeat_interleave(torch.arange(len(offsets), device=ids.device), ends - offsets)
    weighted = table.index_select(0, ids) * weights.unsqueeze(1)
    return table.new_zeros(len(offsets), table.shape[1]).index_add(0, bag_of_entry, weighted)


# ------------------------------------------------------------ dynamic matrices (registered in photodialog.registry)


def sentence_blocks(bridge: VocabularyBridge, caption: CaptionTokens, sd_row: torch.Tensor) -> Blocks:
    """Eq. 10's one block T_LLM x T_SD: every LLM token of the caption with every SD token.

    ``sd_row`` is the caption's R~SD row: the same content tokens ``content_sd_ids`` would give
    (cut to the length less the start and end tokens) plus specials and padding, which are
    dropped, so the caption is not tokenized twice.
    """
    llm = sorted({i for i in caption.llm_ids if i not in bridge.llm_specials})
    sd = sorted(set(sd_row.tolist()) - bridge.sd_specials)
    return [(llm, sd)] if llm and sd else []


def word_blocks(bridge: VocabularyBridge, caption: CaptionTokens, sd_row: torch.Tensor) -> Blocks:
    """The union over the caption's words of T_LLM(word) x T_SD(word), each pair once (M is 0/1):
    one block per LLM token k, with the SD tokens of every word whose LLM tokens hold k."""
    targets: dict[int, set[int]] = defaultdict(set)
    for word in caption.text.split():
        llm = [i for i in bridge.llm_tokenizer(word, add_special_tokens=False).input_ids if i not in bridge.llm_specials]
        sd = bridge.content_sd_ids(word)
        for k in llm:
            targets[k].update(sd)
    return [([k], sorted(j)) for k, j in sorted(targets.items()) if j]
