"""(i) The cost curve: the draw and the whole list at three sizes, and whether their time grows
linearly with the entrants (the largest draw is (d)'s). Draws here use DRAW_BEACON=off: the curve is
the draw's own work, without the wait for a beacon round, which does not grow with the entrants."""

from __future__ import annotations

import itertools

from bench.harness import Bench
from bench.scales import TARGETS, target
from bench.scenarios.draw import draw
from bench.scenarios.listing import list_once
from bench.world import DRAW_IDS, LIST_IDS


def run(bench: Bench) -> None:
    """(i) the cost curve: draw and whole list at the three sizes (the largest draw is (d)'s)."""
    draws = []
    for gid in DRAW_IDS[:2]:
        point = draw(bench, gid, f"i-draw-{bench.world.giveaways[gid]}", draw_beacon="off")
        point.pop("entrant_sample")
        draws.append(point)
    largest = bench.results.get("d_draw")
    if largest:
        draws.append(
            {
                "entrants": largest["entrants"],
                "seconds": largest["beacon_off_seconds"],
                "peak_growth_mb": largest["beacon_off_peak_growth_mb"],
            }
        )
    lists = [
        list_once(bench, gid, bench.world.giveaways[gid], f"i-list-{bench.world.giveaways[gid]}")
        for gid in LIST_IDS
    ]
    bench.results["i_cost_curve"] = {
        "what": "draw (100 winners, re-check on, DRAW_BEACON=off) and whole list (limit = entrants) at three sizes",
        "draw": draws,
        "list": lists,
        "targets": [
            target(
                "draw: worst t(10n)/t(n) ÷ 10 (≤ 1.3 = linear or better)",
                _growth(draws),
                TARGETS["i_superlinear"],
                "<=",
            ),
            target(
                "list: worst t(10n)/t(n) ÷ 10 (≤ 1.3 = linear or better)",
                _growth(lists),
                TARGETS["i_superlinear"],
                "<=",
            ),
        ],
    }


def _growth(points: list[dict]) -> float:
    """The worst (t(n2)/t(n1)) / (n2/n1) between consecutive sizes: 1 is linear."""
    ordered = sorted(points, key=lambda p: p["entrants"] if "rows" not in p else p["rows"])
    worst = 0.0
    for small, large in itertools.pairwise(ordered):
        n1 = small.get("rows", small["entrants"])
        n2 = large.get("rows", large["entrants"])
        if small["seconds"] > 0:
            worst = max(worst, (large["seconds"] / small["seconds"]) / (n2 / n1))
    return round(worst, 2)
