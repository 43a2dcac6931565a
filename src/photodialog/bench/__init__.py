"""Performance benchmarks (``photodialog bench ...``): every one returns a JSON-able dict.

Benchmarks:

* ``bridge``: the vocabulary bridge at the paper's vocabulary sizes against the paper's
  sparse-COO product and the dense matrix (``reference``), on paper-size synthetic
  vocabularies (``vocab``).
* ``step``: one training step of the end-to-end model against the pipeline (bridge ``none``),
  on tiny systems built as the trainer builds them (``tiny``).
* ``chat``: one chat turn: time to first token, tokens/s with and without KV cache, diffusion.
* ``paper``: the paper's architectures at full size with random weights (``paper_configs``), GPU only.

Helpers: ``timing`` (medians of repeated runs), ``memory`` (peak bytes of the tensors a piece
of code creates, on any device), ``machine`` (what the numbers ran on, threads), ``report``.
"""
