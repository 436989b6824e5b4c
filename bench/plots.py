"""The report's pictures: PNG files beside REPORT.md, drawn with matplotlib (Agg, no display)
from the same results as its tables, which keep the numbers.

Each picture is drawn only from what ``results.json`` holds; one whose figures are missing is not
drawn, and ``draw`` says why, so REPORT.md can say so instead of showing an invented curve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ROUNDS = "registrations-per-round.png"
LATENCY = "latency-percentiles.png"
COST_CURVE = "cost-curve.png"
BUDGET_BURST = "telegram-budget-burst.png"
TELEGRAM = "j_telegram"  # the benchmark (j) whose timeline BUDGET_BURST draws
THROUGHPUT = {
    "a_returning_register": "(a) returning users, 32 connections",
    "b_burst": "(b) the burst, 256 connections, Telegram at 100 ms",
}
PERCENTILES = ("p50_ms", "p90_ms", "p99_ms", "max_ms")


@dataclass
class Pictures:
    """What ``draw`` made: file names by picture, and a sentence for each one it could not."""

    drawn: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


def draw(out_dir: Path, results: dict) -> Pictures:
    """Every picture the results allow, written to ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    pictures = Pictures()
    benches = results["benchmarks"]
    runs = {key: benches[key]["runs"] for key in THROUGHPUT if benches.get(key, {}).get("runs")}
    for name, function in ((ROUNDS, _rounds), (LATENCY, _latency)):
        if runs:
            _save(pyplot, function(pyplot, runs), out_dir / name)
            pictures.drawn[name] = name
        else:
            pictures.missing[name] = "no throughput benchmark (a) or (b) in this run"
    curve = benches.get("i_cost_curve")
    if curve and curve.get("draw") and curve.get("list"):
        _save(pyplot, _cost_curve(pyplot, curve), out_dir / COST_CURVE)
        pictures.drawn[COST_CURVE] = COST_CURVE
    else:
        pictures.missing[COST_CURVE] = "no cost curve (i) in this run"
    telegram = benches.get(TELEGRAM)
    if telegram and telegram.get("timeline"):
        _save(pyplot, _budget_burst(pyplot, telegram), out_dir / BUDGET_BURST)
        pictures.drawn[BUDGET_BURST] = BUDGET_BURST
    else:
        pictures.missing[BUDGET_BURST] = missing_budget_series(benches)
    return pictures


def missing_budget_series(benches: dict) -> str:
    """Why the Telegram budget's burst over time is not drawn."""
    if TELEGRAM in benches:
        return "(j) Telegram's limits recorded no timeline in this run"
    return f"this run has no (j) Telegram's limits (results.json has no benchmarks.{TELEGRAM})"


def _save(pyplot, figure, path: Path) -> None:
    # No software version or date in the file: the same results draw the same bytes.
    figure.savefig(path, dpi=100, metadata={"Software": None})
    pyplot.close(figure)


def _rounds_of(result: dict) -> list[dict]:
    return result.get("rounds") or [result]


def _rounds(pyplot, runs: dict[str, list[dict]]):
    """Registrations a second of the service beside the ceiling, each round, each worker model."""
    figure, axes = pyplot.subplots(1, len(runs), figsize=(6.5 * len(runs), 4.2), squeeze=False)
    for axis, (key, key_runs) in zip(axes[0], runs.items(), strict=True):
        labels, service, ceiling, ratios = [], [], [], []
        for run in key_runs:
            rounds = list(zip(_rounds_of(run["service"]), _rounds_of(run["ceiling"]), strict=True))
            for index, (one_service, one_ceiling) in enumerate(rounds):
                labels.append(f"{run['tag']}\nround {index + 1}" if len(rounds) > 1 else run["tag"])
                service.append(one_service["created_rps"])
                ceiling.append(one_ceiling["created_rps"])
                ratios.append(run["round_ratios"][index])
        positions = range(len(labels))
        width = 0.38
        axis.bar(
            [p - width / 2 for p in positions], ceiling, width, label="ceiling app", color="#9aa5b1"
        )
        bars = axis.bar(
            [p + width / 2 for p in positions], service, width, label="service", color="#2b6cb0"
        )
        for bar, ratio in zip(bars, ratios, strict=True):
            axis.annotate(
                f"{ratio:.2f}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        axis.set_xticks(list(positions), labels, fontsize=8)
        axis.set_ylabel("confirmed registrations / s")
        axis.set_title(THROUGHPUT[key], fontsize=10)
        axis.legend(fontsize=8, loc="upper right")
        axis.set_ylim(0, max(ceiling + service) * 1.18)
    figure.suptitle(
        "Registrations per second, service beside ceiling (number: service / ceiling)", fontsize=11
    )
    figure.tight_layout()
    return figure


def _latency(pyplot, runs: dict[str, list[dict]]):
    """Latency percentiles of each round: the service solid, the ceiling dashed."""
    figure, axes = pyplot.subplots(1, len(runs), figsize=(6.5 * len(runs), 4.2), squeeze=False)
    from matplotlib import ticker

    colours = pyplot.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, (key, key_runs) in zip(axes[0], runs.items(), strict=True):
        line = 0
        for run in key_runs:
            for app, style in (("service", "-"), ("ceiling", "--")):
                rounds = _rounds_of(run[app])
                for index, one in enumerate(rounds):
                    name = f"{app} {run['tag']}" + (f" r{index + 1}" if len(rounds) > 1 else "")
                    axis.plot(
                        range(len(PERCENTILES)),
                        [one[p] for p in PERCENTILES],
                        style,
                        marker="o",
                        markersize=3,
                        color=colours[(line + index) % len(colours)],
                        label=name,
                    )
            line += len(_rounds_of(run["service"]))
        axis.set_yscale("log")
        plain = ticker.FuncFormatter(lambda value, _position: f"{value:g}")
        axis.yaxis.set_major_formatter(plain)
        axis.yaxis.set_minor_formatter(plain)
        axis.tick_params(axis="y", which="minor", labelsize=7)
        axis.set_xticks(range(len(PERCENTILES)), ["p50", "p90", "p99", "max"])
        axis.set_ylabel("ms (log scale)")
        axis.set_title(THROUGHPUT[key], fontsize=10)
        axis.grid(True, which="both", axis="y", alpha=0.3)
        axis.legend(fontsize=7, ncol=2)
    figure.suptitle("Latency of registrations by percentile, each round", fontsize=11)
    figure.tight_layout()
    return figure


def _cost_curve(pyplot, curve: dict):
    """Seconds of a draw and of a whole-list request against entrants, with linear growth from
    the smallest size for comparison."""
    figure, axis = pyplot.subplots(figsize=(6.5, 4.2))
    for kind, colour in (("draw", "#c05621"), ("list", "#2b6cb0")):
        points = sorted(curve[kind], key=lambda p: p["entrants"])
        sizes = [p.get("rows", p["entrants"]) for p in points]
        seconds = [p["seconds"] for p in points]
        label = (
            "draw (100 winners, re-check on)" if kind == "draw" else "whole list (limit = entrants)"
        )
        axis.plot(sizes, seconds, "-o", color=colour, label=label)
        axis.plot(
            sizes,
            [seconds[0] * n / sizes[0] for n in sizes],
            ":",
            color=colour,
            alpha=0.6,
            label=f"{kind}: linear from {sizes[0]:,}",
        )
        for size, second in zip(sizes, seconds, strict=True):
            axis.annotate(
                f"{second:g} s",
                (size, second),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=8,
            )
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("entrants")
    axis.set_ylabel("seconds (log scale)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title("Cost curve: draw and whole list against entrants", fontsize=11)
    figure.tight_layout()
    return figure


def _budget_burst(pyplot, telegram: dict):
    """(j) second by second: getChatMember calls Telegram answered and refused (429) against the
    bot's budget and Telegram's limit, and the entries pending verification (right axis)."""
    timeline = sorted(telegram["timeline"], key=lambda point: point["second"])
    seconds = [point["second"] for point in timeline]
    answered = [point["answered"] for point in timeline]
    refused = [point["refused_429"] for point in timeline]
    pending = [float("nan") if point["pending"] is None else point["pending"] for point in timeline]
    budget = telegram.get("budget_per_second")
    limit = telegram.get("telegram_limit_per_second")

    figure, axis = pyplot.subplots(figsize=(9, 5.2))
    axis.bar(seconds, answered, width=0.85, color="#2b6cb0", label="getChatMember answered")
    axis.bar(
        seconds,
        refused,
        width=0.85,
        bottom=answered,
        color="#c53030",
        label="refused by Telegram (429)",
    )
    if budget:
        axis.axhline(
            budget, color="#2f855a", linestyle="--", label=f"the bot's budget ({budget}/s)"
        )
    if limit:
        axis.axhline(limit, color="#c53030", linestyle=":", label=f"Telegram's limit ({limit}/s)")
    axis.axvline(telegram["seconds"], color="#4a5568", linewidth=1, label="the burst ends")
    drain = telegram.get("drain_seconds")
    # Marked only when it was measured and something was pending to drain.
    if drain is not None and telegram.get("drain_measured", True) and any(p > 0 for p in pending):
        axis.axvline(
            telegram["seconds"] + drain,
            color="#4a5568",
            linewidth=1,
            linestyle="-.",
            label="no entry pending any more",
        )
    tallest = max(
        [a + r for a, r in zip(answered, refused, strict=True)] + [budget or 0, limit or 0]
    )
    axis.set_ylim(0, max(tallest, 1) * 1.25)
    axis.set_xlim(min(seconds) - 1, max(seconds) + 1)
    axis.set_xlabel("seconds since the burst started")
    axis.set_ylabel("getChatMember calls in the second")

    right = axis.twinx()
    right.plot(seconds, pending, color="#b7791f", linewidth=2, label="entries pending (right axis)")
    right.set_ylabel("entries pending verification")
    right.set_ylim(0, max([p for p in pending if p == p] + [1]) * 1.1)

    handles, labels = axis.get_legend_handles_labels()
    more_handles, more_labels = right.get_legend_handles_labels()
    axis.legend(
        handles + more_handles,
        labels + more_labels,
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncol=4,
        frameon=False,
    )
    axis.set_title(
        f"(j) Telegram's limits: {telegram['connections']} connections for {telegram['seconds']} s, "
        f"SUBSCRIPTION_OVERFLOW={telegram['mode']}",
        fontsize=11,
    )
    figure.tight_layout()
    return figure
