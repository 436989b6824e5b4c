"""bench/REPORT.md's (j) Telegram's limits: its table and its picture, drawn from a small
synthetic result of the shape bench/scenarios/telegram_limits.py records, and what the report
says when a run has no (j)."""

from __future__ import annotations

import copy
import json
import math

import pytest

from bench import plots, report
from bench.harness import BENCH

# A burst of 4 s against a budget of 20 calls a second and a Telegram allowing 30, pending
# entries drained 3 s after it; the sampler missed second 5.
TIMELINE = [
    {"second": 0, "answered": 20, "refused_429": 0, "pending": 12},
    {"second": 1, "answered": 21, "refused_429": 0, "pending": 30},
    {"second": 2, "answered": 20, "refused_429": 2, "pending": 41},
    {"second": 3, "answered": 19, "refused_429": 0, "pending": 44},
    {"second": 4, "answered": 20, "refused_429": 0, "pending": 25},
    {"second": 5, "answered": 20, "refused_429": 0, "pending": None},
    {"second": 6, "answered": 20, "refused_429": 0, "pending": 3},
    {"second": 7, "answered": 3, "refused_429": 0, "pending": 0},
]
TELEGRAM = {
    "what": "32 connections of first-time users for 4 s against a Telegram allowing 30 calls",
    "mode": "defer",
    "connections": 32,
    "seconds": 4,
    "budget_per_second": 20,
    "telegram_limit_per_second": 30,
    "registrations": {"entered": 120, "pending": 44, "excluded": 1, "refused": 0},
    "p50_ms": 181.5,
    "p99_ms": 2_204.25,
    "get_chat_member_calls": 165,
    "max_calls_in_a_second": 21,
    "refused_429": 2,
    "drain_seconds": 3.2,
    "drain_measured": True,
    "draw_seconds": 3.105,
    "draw_seconds_beyond_beacon_wait": 0.412,
    "timeline": TIMELINE,
    "targets": [
        {"name": "429s from Telegram", "measured": 2, "target": "<= 0", "pass": False},
    ],
}


@pytest.fixture
def results() -> dict:
    """The committed run's meta (what REPORT.md's header needs), no benchmark of its own."""
    committed = json.loads((BENCH / "results.json").read_text())
    return {"meta": committed["meta"], "benchmarks": {}, "profiles": {}, "errors": []}


def test_the_report_shows_the_telegram_limits_table_and_picture(results, tmp_path):
    results["benchmarks"]["j_telegram"] = copy.deepcopy(TELEGRAM)
    report.write_report(tmp_path / "REPORT.md", results)
    text = (tmp_path / "REPORT.md").read_text()

    picture = tmp_path / plots.BUDGET_BURST
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"]({plots.BUDGET_BURST})" in text
    assert "burst over time: not drawn" not in text
    section = text[text.index("## (j) Telegram's limits") :]
    for row in (
        "| SUBSCRIPTION_OVERFLOW | defer |",
        "| the bot's budget (TELEGRAM_CALLS_PER_SECOND) | 20 |",
        "| Telegram's limit (calls of one bot in any second) | 30 |",
        "| registration p99 (ms) | 2,204.2 |",
        "| 429s from Telegram | 2 |",
        "| after the burst until no entry is pending (s) | 3.2 |",
        "| draw beyond the wait for the beacon round (s) | 0.412 |",
        "| registrations: entries still pending verification after the burst | 44 |",
        "| 2 | 20 | 2 | 41 |",  # the timeline, second by second
        "| 5 | 20 | 0 |  |",  # a second the sampler missed: no figure invented
    ):
        assert row in section, row
    assert "| j_telegram | 429s from Telegram | 2 | <= 0 | **MISS** |" in text


def test_a_projected_drain_says_so(results, tmp_path):
    telegram = copy.deepcopy(TELEGRAM) | {"drain_seconds": 95.0, "drain_measured": False}
    results["benchmarks"]["j_telegram"] = telegram
    report.write_report(tmp_path / "REPORT.md", results)
    assert (
        "| after the burst until no entry is pending (s) | 95 (projected) |"
        in (tmp_path / "REPORT.md").read_text()
    )


def test_the_picture_draws_the_timeline_against_both_limits():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure = plots._budget_burst(pyplot, copy.deepcopy(TELEGRAM))
    try:
        calls, pending = figure.axes
        bars = [patch for container in calls.containers for patch in container]
        answered, refused = bars[: len(TIMELINE)], bars[len(TIMELINE) :]
        assert [bar.get_height() for bar in answered] == [p["answered"] for p in TIMELINE]
        assert [bar.get_height() for bar in refused] == [p["refused_429"] for p in TIMELINE]
        assert [bar.get_y() for bar in refused] == [p["answered"] for p in TIMELINE]  # on top
        levels = {line.get_label(): line.get_ydata()[0] for line in calls.get_lines()}
        assert levels["the bot's budget (20/s)"] == 20
        assert levels["Telegram's limit (30/s)"] == 30
        marks = {line.get_label(): line.get_xdata()[0] for line in calls.get_lines()}
        assert marks["the burst ends"] == 4
        assert marks["no entry pending any more"] == pytest.approx(7.2)
        (line,) = pending.get_lines()
        drawn = list(line.get_ydata())
        assert drawn[:5] == [12, 30, 41, 44, 25]
        assert math.isnan(drawn[5])  # no sample: a gap, not a zero
        assert drawn[6:] == [3, 0]
    finally:
        pyplot.close(figure)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"drain_measured": False, "drain_seconds": 95.0}, "projected, not seen"),
        ({"timeline": [p | {"pending": 0} for p in TIMELINE]}, "nothing was pending"),
    ],
)
def test_no_drain_is_marked_that_the_timeline_did_not_show(change, why):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure = plots._budget_burst(pyplot, copy.deepcopy(TELEGRAM) | change)
    try:
        labels = [line.get_label() for line in figure.axes[0].get_lines()]
        assert "the burst ends" in labels
        assert "no entry pending any more" not in labels, why
    finally:
        pyplot.close(figure)


def test_without_the_benchmark_the_report_says_what_is_missing(results, tmp_path):
    report.write_report(tmp_path / "REPORT.md", results)
    text = (tmp_path / "REPORT.md").read_text()
    assert not (tmp_path / plots.BUDGET_BURST).exists()
    assert (
        "not drawn, because this run has no (j) Telegram's limits "
        "(results.json has no benchmarks.j_telegram)" in text
    )
    assert (
        "## (j) Telegram's limits\n\nNot in this run: results.json has no benchmarks.j_telegram"
        in text
    )

    results["benchmarks"]["j_telegram"] = copy.deepcopy(TELEGRAM) | {"timeline": []}
    report.write_report(tmp_path / "REPORT.md", results)
    text = (tmp_path / "REPORT.md").read_text()
    assert not (tmp_path / plots.BUDGET_BURST).exists()
    assert "not drawn, because (j) Telegram's limits recorded no timeline in this run" in text
    assert "| 429s from Telegram | 2 |" in text  # the figures are still there
