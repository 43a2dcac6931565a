"""The epoch's sample order: a permutation by default, weighted draws when some samples are oversampled."""

from __future__ import annotations

from photodialog.data.schema import Photo, Sample, Turn
from photodialog.training.data import EncodedSamples, epoch_order

PHOTO = Photo("a red car at night", "x.png")


def samples() -> list[Sample]:
    plain = Sample("1", 1, [Turn("A", "hi")], Turn("B", "hello"))
    shares = Sample("2", 1, [Turn("A", "can i see it?")], Turn("B", "[IMG] a red car at night [/IMG]", [PHOTO]))
    replies = Sample("3", 1, [Turn("A", "look! [IMG] a red car at night [/IMG]", [PHOTO])], Turn("B", "nice car"))
    return [plain, shares, replies] * 100


def test_uniform_order_is_a_permutation_and_weights_oversample_what_they_name():
    dataset = EncodedSamples(samples(), formatter=None)
    order = epoch_order(dataset, 0, 0, 4).indices
    assert sorted(order) == list(range(300))
    assert [dataset.replies_to_photo(i) for i in range(3)] == [False, False, True]
    assert [dataset.shares_photo(i) for i in range(3)] == [False, True, False]
    drawn = epoch_order(dataset, 0, 0, 4, reply_weight=4.0).indices
    replies = sum(dataset.replies_to_photo(i) for i in drawn)
    assert len(drawn) == 300 and 160 < replies < 240  # expected 4/6 of the draws: 200
    assert epoch_order(dataset, 0, 0, 4, reply_weight=4.0).indices == drawn  # seeded: the same every run
