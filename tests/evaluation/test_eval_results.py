"""The eval result JSON: aggregation over seeds, validation, save and load."""

import copy
import json
import math

import pytest

from photodialog.errors import UserError
from photodialog.evaluation.metrics import (
    REQUIRED_METRICS,
    MetricSet,
    SeedResult,
    aggregate_seeds,
    load_result,
    mean_and_std,
    metric_info,
    metric_order,
    save_result,
    validate_result,
)


def test_mean_and_sample_std():
    assert mean_and_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))  # ddof = 1: sqrt((1 + 0 + 1) / 2)
    assert mean_and_std([5.0]) == (5.0, 0.0)
    with pytest.raises(ValueError):
        mean_and_std([])


def test_is_keeps_its_split_std_and_the_std_over_seeds(make_result, required_values):
    result = make_result(
        "e2e",
        {
            0: required_values(**{"is": 14.0, "is_split_std": 1.0}),
            1: required_values(**{"is": 15.0, "is_split_std": 0.8}),
            2: required_values(**{"is": 16.0, "is_split_std": 0.6}),
        },
    )
    entry = result["aggregate"]["is"]
    assert entry["mean"] == pytest.approx(15.0)
    assert entry["std"] == pytest.approx(1.0)  # spread of the IS mean over seeds
    assert entry["split_std"] == pytest.approx(0.8)  # torch-fidelity's split std, averaged
    assert "is_split_std" not in result["aggregate"]
    assert entry["values"] == [14.0, 15.0, 16.0] and entry["seeds"] == [0, 1, 2]


def test_unavailable_metrics_keep_their_reason(make_result, required_values):
    values = required_values()
    del values["fid"]
    result = make_result("e2e", {0: values, 1: values}, unavailable={"fid": "no weights"})
    assert result["aggregate"]["fid"] == {"available": False, "reason": "no weights"}
    assert result["per_seed"][0]["unavailable"]["fid"]["reason"] == "no weights"


def test_metric_available_on_some_seeds_only():
    seeds = [
        SeedResult(0).add(MetricSet(values={"fid": 70.0})),
        SeedResult(1).mark_unavailable(["fid"], "generation crashed"),
        SeedResult(2).add(MetricSet(values={"fid": 74.0})),
    ]
    entry = aggregate_seeds(seeds)["fid"]
    assert entry["n"] == 2 and entry["mean"] == pytest.approx(72.0)
    assert entry["unavailable_seeds"] == {"1": "generation crashed"}


def test_nan_values_become_unavailable_instead_of_poisoning_the_mean():
    seed = SeedResult(0).add(MetricSet(values={"fid": math.nan, "bleu1": 3.0}))
    assert "fid" not in seed.metrics and "nan" in seed.unavailable["fid"]["reason"]
    # A later real value replaces the mark.
    seed.add(MetricSet(values={"fid": 5.0}))
    assert seed.metrics["fid"] == 5.0 and "fid" not in seed.unavailable


def test_save_and_load_round_trip(tmp_path, make_result, required_values):
    result = make_result("e2e", {0: required_values(), 7: required_values(bleu1=14.0)})
    path = save_result(result, tmp_path / "deep" / "eval.json")
    loaded = load_result(path)
    assert loaded == json.loads(json.dumps(result))
    assert loaded["seeds"] == [0, 7]
    assert loaded["aggregate"]["bleu1"]["mean"] == pytest.approx(13.0)
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize(
    "path",
    [("schema",), ("model", "name"), ("data", "split"), ("seeds",), ("per_seed",), ("aggregate",)]
    + [("aggregate", key) for key in REQUIRED_METRICS]
    + [("aggregate", "is", "split_std"), ("aggregate", "bleu1", "mean")],
)
def test_validate_names_the_missing_field(path, make_result, required_values):
    result = copy.deepcopy(make_result("e2e", {0: required_values()}))
    validate_result(result)
    container = result
    for key in path[:-1]:
        container = container[key]
    del container[path[-1]]
    with pytest.raises(UserError, match="'" + ".".join(path).replace(".", r"\.") + "'"):
        validate_result(result)


def test_validate_rejects_wrong_types_and_disagreeing_seeds(make_result, required_values):
    result = make_result("e2e", {0: required_values(), 1: required_values()})
    bad_seeds = copy.deepcopy(result)
    bad_seeds["seeds"] = [0, 2]
    with pytest.raises(UserError, match="disagree"):
        validate_result(bad_seeds)
    bool_n = copy.deepcopy(result)
    bool_n["aggregate"]["bleu1"]["n"] = True
    with pytest.raises(UserError, match="aggregate.bleu1.n"):
        validate_result(bool_n)
    with pytest.raises(UserError, match="schema"):
        validate_result({**result, "schema": "something/9"})
    with pytest.raises(UserError):
        validate_result([result])


def test_build_refuses_duplicate_seeds(make_result, required_values):
    from photodialog.evaluation.metrics import build_result

    seeds = [SeedResult(0).add(MetricSet(values=required_values())) for _ in range(2)]
    with pytest.raises(UserError, match="seed"):
        build_result(model={"name": "m"}, data={"dataset": "d", "split": "s"}, seed_results=seeds)


def test_load_reports_missing_and_broken_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_result(tmp_path / "nope.json")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    with pytest.raises(UserError, match="eval result file not found: .*a-file/eval.json"):
        load_result(a_file / "eval.json")  # a parent that is a file: NotADirectoryError, the same message
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(UserError, match="not a JSON"):
        load_result(broken)
    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text(json.dumps({"schema": "photodialog.eval/1"}))
    with pytest.raises(UserError, match="incomplete.json.*'model'"):
        load_result(incomplete)


def test_metric_info_and_order():
    assert metric_info("fid").higher_is_better is False
    assert metric_info("probe_fid").higher_is_better is False
    assert metric_info("bleu4").label == "BLEU-4" and metric_info("bleu4").higher_is_better
    assert metric_info("probe_acc_colour").label == "colour acc"
    assert metric_info("mystery").higher_is_better is None
    keys = ["zeta", "probe_fid", "probe_acc_object", "share_f1", "fid", "bleu4", "bleu1", "probe_acc_colour"]
    keys.append("is_split_std")
    assert metric_order(keys) == [
        "bleu1", "fid", "bleu4", "share_f1", "probe_acc_object", "probe_acc_colour", "probe_fid", "zeta"
    ]


def test_probe_accuracies_are_ordered_by_group_then_attribute_whatever_came_first():
    from photodialog.evaluation.attribute_metrics import all_probe_keys

    # A seed lists measured keys before unavailable ones: e.g. the generator group measured, the others not.
    measured_first = [*reversed(all_probe_keys()), "probe_acc_caption_texture", "probe_acc_other_object", "bleu1"]
    ordered = metric_order(measured_first)
    assert ordered[0] == "bleu1"
    probe = [key for key in ordered if key in all_probe_keys()]
    assert probe == all_probe_keys()  # caption, gold, generator; object, colour, scene, all; then the two FIDs
    # Unknown parts sort after the known ones of their group, an unknown group after every known group.
    assert ordered.index("probe_acc_caption_all") < ordered.index("probe_acc_caption_texture") < ordered.index(
        "probe_acc_gold_object"
    )
    position = ordered.index
    assert position("probe_acc_generator_all") < position("probe_acc_other_object") < position("probe_fid")


def test_aggregate_lists_probe_keys_in_table_order_when_a_group_is_unavailable():
    from photodialog.evaluation.metrics import PHOTO_MATCH_KEYS
    from photodialog.evaluation.attribute_metrics import all_probe_keys, group_keys

    seed = SeedResult(0).add(MetricSet(values={key: 50.0 for key in group_keys("generator")}))
    seed.mark_unavailable([*group_keys("caption"), *group_keys("gold"), *PHOTO_MATCH_KEYS, "probe_fid"], "no photo")
    seed.add(MetricSet(values={"probe_fid_generator": 3.0}))
    assert list(aggregate_seeds([seed])) == all_probe_keys()
