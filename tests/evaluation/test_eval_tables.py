"""Table 2 and the other tables in Markdown and plain text, and the comparison of several results."""

import pytest

from photodialog.evaluation.tables import (
    caption_table,
    compare_results,
    comparison_table,
    format_difference,
    probe_table,
    report,
    seeds_table,
    share_moment_table,
    table2,
)


@pytest.fixture
def two_results(make_result, required_values):
    pipeline = make_result(
        "pipeline",
        {
            0: required_values(bleu1=10.0, fid=80.0, **{"is": 13.0}),
            1: required_values(bleu1=11.0, fid=79.0, **{"is": 14.0}),
        },
    )
    end_to_end = make_result(
        "end-to-end",
        {
            0: required_values(bleu1=12.0, fid=76.0, **{"is": 13.0}),
            1: required_values(bleu1=12.5, fid=75.0, **{"is": 13.0}),
        },
    )
    return pipeline, end_to_end


def _cells(markdown_line: str) -> list[str]:
    return [cell.strip() for cell in markdown_line.strip().strip("|").split("|")]


def test_table2_has_the_paper_layout(two_results):
    markdown = table2(two_results).to_markdown()
    lines = markdown.splitlines()
    header = next(line for line in lines if line.startswith("| Model"))
    assert _cells(header) == ["Model", "BLEU-1", "BLEU-2", "Rouge-L", "IS", "FID"]
    rows = {cells[0]: cells for cells in map(_cells, lines[4:6])}
    assert rows["pipeline"][1] == "10.50"  # mean of 10 and 11
    assert rows["pipeline"][4] == "13.50 ± 0.90"  # IS mean ± split std averaged over seeds
    assert rows["end-to-end"][5] == "75.50"


def test_unavailable_metrics_show_na_with_one_shared_footnote(make_result, required_values):
    values = required_values()
    for key in ("is", "is_split_std", "fid"):
        del values[key]
    result = make_result("e2e", {0: values}, unavailable={"is": "no Inception weights", "fid": "no Inception weights"})
    table = table2([result])
    assert table.rows[0][4] == "n/a [1]" and table.rows[0][5] == "n/a [1]"
    assert table.footnotes == ["IS, FID: no Inception weights."]
    assert "[1] IS, FID: no Inception weights." in table.to_markdown()


def test_plain_text_columns_are_aligned(two_results):
    text = table2(two_results, names=["a", "bb"]).to_text()
    lines = text.splitlines()
    header, rule, first, second = lines[1:5]
    assert header.split() == ["Model", "BLEU-1", "BLEU-2", "Rouge-L", "IS", "FID"]
    assert set(rule.replace(" ", "")) == {"-"}
    # Right-aligned numbers end in the same column as their header.
    assert first.index("10.50") + len("10.50") == header.index("BLEU-1") + len("BLEU-1")
    assert len(first) == len(second) == len(header)


def test_names_override_and_must_match_in_number(two_results):
    assert table2(two_results, names=["A", "B"]).rows[1][0] == "B"
    with pytest.raises(ValueError):
        table2(two_results, names=["only one"])


def test_share_probe_and_seed_tables(make_result, required_values):
    values = required_values(share_precision=60.0, probe_acc_object=80.0, probe_all_correct=40.0, probe_fid=3.0)
    result = make_result("e2e", {0: values, 1: {**values, "probe_acc_object": 90.0}})
    result["chance"] = {"probe_acc_object": 12.5, "probe_all_correct": 1.25}
    assert share_moment_table([result]).rows[0][1] == "60.00"
    probe = probe_table([result])
    assert probe.headers == ["Model", "object acc", "all correct", "probe-FID"]
    assert probe.rows[0][1] == "85.00"
    assert probe.rows[-1] == ["chance", "12.50", "1.25", ""]
    per_seed = seeds_table(result)
    object_row = next(row for row in per_seed.rows if row[0] == "object acc")
    assert object_row[1:] == ["80.00", "90.00", "85.00 ± 7.07"]  # sample std of 80, 90


def test_probe_table_absent_without_probe_scores(two_results):
    assert probe_table(two_results) is None
    assert "probe" not in report(two_results)
    assert "Share moment" in report(two_results, fmt="text")


def test_differences_know_each_metrics_direction():
    assert format_difference("bleu1", 1.432) == "+1.43 ↑ better"
    assert format_difference("bleu1", -0.5) == "-0.50 ↓ worse"
    assert format_difference("fid", -3.86) == "-3.86 ↓ better"
    assert format_difference("probe_fid", 2.0) == "+2.00 ↑ worse"
    assert format_difference("mystery", 2.0) == "+2.00 ↑"
    assert format_difference("fid", 0.001) == "+0.00 ="


def test_compare_results_side_by_side(two_results):
    table = comparison_table(two_results)
    assert table.headers == ["Metric", "pipeline", "end-to-end", "end-to-end - pipeline"]
    rows = {row[0]: row for row in table.rows}
    assert rows["BLEU-1 ↑"][1:] == ["10.50", "12.25", "+1.75 ↑ better"]
    assert rows["FID ↓"][3] == "-4.00 ↓ better"
    assert rows["IS ↑"][3] == "-0.50 ↓ worse"  # IS 13.5 -> 13.0
    markdown = compare_results(two_results)
    assert "| FID ↓ | 79.50 | 75.50 | -4.00 ↓ better |" in markdown
    assert "FID ↓" in compare_results(two_results, fmt="text")
    with pytest.raises(ValueError):
        compare_results(two_results, fmt="html")


def test_compare_with_a_metric_missing_on_one_side(make_result, required_values):
    base = make_result("a", {0: required_values(probe_fid=3.0)})
    values = required_values()
    other = make_result("b", {0: values})
    table = comparison_table([base, other])
    probe_row = next(row for row in table.rows if row[0] == "probe-FID ↓")
    assert probe_row[1] == "3.00" and probe_row[2].startswith("n/a [") and probe_row[3] == "n/a"
    assert table.footnotes == ["probe-FID: not measured."]


def test_compare_warns_when_the_data_differ(make_result, required_values):
    test_result = make_result("a", {0: required_values()})
    dev_result = make_result("b", {0: required_values()})
    dev_result["data"]["split"] = "dev"
    assert "different data (a: synthetic/test, b: synthetic/dev)" in compare_results([test_result, dev_result])
    assert "different data" not in compare_results([test_result, test_result])


def test_report_with_seed_tables_footnotes_unavailable_summaries(make_result, required_values):
    values = required_values()
    del values["fid"]
    result = make_result("e2e", {0: values, 1: values}, unavailable={"fid": "no weights"})
    text = report([result], fmt="text", with_seeds=True)
    assert "Per seed: e2e" in text
    fid_line = next(line for line in text.splitlines() if line.startswith("FID "))
    assert fid_line.split() == ["FID", "n/a", "n/a", "n/a", "[1]"]


def test_seed_spread_shows_mean_and_sample_std_over_seeds(two_results):
    rows = {cells[0]: cells for cells in map(_cells, table2(two_results, seed_spread=True).to_markdown().splitlines()[4:6])}
    assert rows["pipeline"][1] == "10.50 ± 0.71"  # BLEU-1 10 and 11: sample std 0.707
    assert rows["pipeline"][4] == "13.50 ± 0.90"  # IS keeps the paper's split std


def test_the_own_caption_table_shows_on_a_synthetic_world_only(make_result, required_values, two_results):
    values = required_values(caption_acc_object=98.0, caption_acc_colour=60.0, caption_acc_scene=100.0,
                             caption_acc_all=59.0, reply_acc_object=81.0)
    result = make_result("e2e", {0: values, 1: {**values, "caption_acc_object": 100.0}})
    table = caption_table([result])
    assert table.headers == ["Model", "caption object", "caption colour", "caption scene", "caption all", "sees: object"]
    assert table.rows == [["e2e", "99.00", "60.00", "100.00", "59.00", "81.00"]]
    assert "Own caption and what it sees" in report([result], fmt="text")
    assert caption_table(two_results) is None and "Own caption" not in report(two_results)


def test_compare_warns_when_the_same_data_was_asked_differently(make_result, required_values):
    full = make_result("a", {0: required_values()})
    quick = make_result("b", {0: required_values()})
    full["data"]["targets"], quick["data"]["targets"] = 1173, 24
    full["settings"], quick["settings"] = {"diffusion_steps": 20, "sampler": "ddim"}, {"diffusion_steps": 4, "sampler": "ddim"}
    text = compare_results([full, quick])
    assert "differ in target turns (a: 1173, b: 24)" in text and "differ in diffusion steps (a: 20, b: 4)" in text
    assert "sampler" not in text and "differ in" not in compare_results([full, full])
