import torch

from photodialog.models.stgs import straight_through_gumbel_softmax


def test_forward_rows_are_exact_one_hots():
    logits = torch.randn(7, 50, requires_grad=True)
    sample = straight_through_gumbel_softmax(logits, tau=0.7, generator=torch.Generator().manual_seed(0))
    rows = sample.one_hot()
    assert torch.equal(rows, torch.nn.functional.one_hot(sample.tokens, 50).float())
    assert set(rows.detach().unique().tolist()) == {0.0, 1.0}
    assert torch.equal(rows.sum(-1), torch.ones(7))


def test_gradient_is_the_gumbel_softmax_gradient():
    # Eq. 7: the straight-through rows copy the gradient of p^GS = softmax((o + g) / tau).
    torch.manual_seed(0)
    logits = torch.randn(5, 30, dtype=torch.float64)
    weights = torch.randn(5, 30, dtype=torch.float64)
    tau = 0.5
    a = logits.clone().requires_grad_()
    sample = straight_through_gumbel_softmax(a, tau, generator=torch.Generator().manual_seed(3))
    (sample.one_hot() * weights).sum().backward()

    g = torch.Generator().manual_seed(3)
    from photodialog.models.stgs import gumbel_noise

    noise = gumbel_noise(logits.shape, generator=g).double()
    b = logits.clone().requires_grad_()
    (torch.softmax((b.float().double() + noise) / tau, -1) * weights).sum().backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-5)
    assert a.grad.abs().sum() > 0


def test_low_temperature_sample_is_the_argmax_of_well_separated_logits():
    torch.manual_seed(1)
    logits = torch.randn(64, 100) * 0.1
    best = torch.randint(0, 100, (64,))
    logits[torch.arange(64), best] += 20.0  # far beyond the Gumbel noise's spread
    for seed in range(5):
        sample = straight_through_gumbel_softmax(logits, tau=0.01, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(sample.tokens, best)
        assert torch.allclose(sample.soft.max(-1).values, torch.ones(64))


def test_without_noise_the_sample_is_the_argmax():
    logits = torch.randn(10, 20)
    sample = straight_through_gumbel_softmax(logits, tau=1.0, noise=False)
    assert torch.equal(sample.tokens, logits.argmax(-1))
    assert torch.allclose(sample.soft, torch.softmax(logits, -1))


def test_gather_matches_dense_one_hot_values_and_gradients():
    logits = torch.randn(6, 40, requires_grad=True)
    sample = straight_through_gumbel_softmax(logits, tau=0.3, generator=torch.Generator().manual_seed(0))
    rows = torch.tensor([0, 0, 3, 5, 5])
    cols = torch.cat([sample.tokens[:1], torch.tensor([7, 1, 2]), sample.tokens[5:6]])
    w = torch.randn(5)
    (sample.gather(rows, cols) * w).sum().backward(retain_graph=True)
    grad_gather = logits.grad.clone()
    logits.grad = None
    dense = sample.one_hot()
    assert torch.equal(sample.gather(rows, cols), dense[rows, cols])
    (dense[rows, cols] * w).sum().backward()
    assert torch.allclose(grad_gather, logits.grad)
