"""The training step reads back as little as it can from the device: response positions come from the
batch's host copy of the labels, and give exactly what the boolean mask on the device gave."""

from __future__ import annotations

import torch


def test_response_positions_from_the_host_labels_give_the_boolean_mask_loss(tiny_world, tmp_path):
    """L_t and the STGS caption rows found on the host copy of the labels (no GPU boolean mask)
    equal those of the boolean mask over [B, T-1] on a padded batch of samples of different lengths."""
    import torch.nn.functional as F

    from photodialog.bench import tiny_setup
    from photodialog.models.formatting import IGNORE

    setup = tiny_setup.prepare(tmp_path / "run", str(tiny_world))
    system = tiny_setup.build(setup)
    batch = tiny_setup.fixed_batch(system, setup, 6, seed=0)
    assert (batch.attention_mask.sum(1) < batch.attention_mask.shape[1]).any()  # padded: T differs per sample
    model = system.model.eval()
    torch.manual_seed(0)
    out = model(batch, tau=1.0, alpha=0.0)
    with torch.no_grad():
        hidden = model._hidden_states(batch)
        predicts = batch.labels[:, 1:] != IGNORE
        logits = model.llm.get_output_embeddings()(hidden[:, :-1][predicts])
        reference = F.cross_entropy(logits.float(), batch.labels[:, 1:][predicts])
    assert torch.equal(out.text_loss.detach(), reference)
    batch.host_labels = batch.labels.clone()  # as Batch.to leaves it when the batch moves to a GPU
    batch.labels = torch.full_like(batch.labels, IGNORE)  # the device copy is no longer read for positions
    torch.manual_seed(0)
    with torch.no_grad():
        _, sample, rows = model._text_forward(batch, 1.0, None)
    batch.labels, batch.host_labels = batch.host_labels, None
    torch.manual_seed(0)
    with torch.no_grad():
        _, sample_again, rows_again = model._text_forward(batch, 1.0, None)
    assert rows == rows_again and torch.equal(sample.tokens, sample_again.tokens)
