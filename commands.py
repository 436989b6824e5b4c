"""Maintenance as ``flask`` commands (run them where the service's environment is set)."""

from __future__ import annotations

import json

import click
from flask import Flask

from services import captcha, draws, listing, subscription
from services.errors import DrawNotFound


def register_commands(app: Flask) -> None:
    """Attach the maintenance commands to the ``flask`` CLI."""

    @app.cli.command("clean-captcha")
    def clean_captcha() -> None:
        """Forget expired captcha challenges, ended lockouts, stale failures, and Telegram
        "subscribed" answers older than SUBSCRIPTION_CACHE_SECONDS."""
        removed = captcha.clean_expired_challenges()
        click.echo(f"removed {removed} expired captcha record(s)")
        forgotten = subscription.forget_expired()
        click.echo(f"removed {forgotten} expired subscription answer(s)")

    @app.cli.command("verify-draws")
    @click.option("--giveaway-id", type=int, default=None, help="Only this giveaway.")
    def verify_draws(giveaway_id: int | None) -> None:
        """Check every draw chain as the standalone verifier does (from the first draw, every
        rule derived), and the stored columns, entrant lists and winner flags against it."""
        results = draws.verify_all_chains(giveaway_id)
        broken = {gid: problems for gid, problems in results.items() if problems}
        for gid, problems in sorted(broken.items()):
            click.echo(f"giveaway {gid}: BROKEN")
            for problem in problems:
                click.echo(f"  - {problem}")
        click.echo(f"{len(results)} giveaway(s) checked, {len(broken)} broken")
        if broken:
            raise SystemExit(1)

    @app.cli.command("giveaway-summary")
    @click.argument("giveaway_id", type=int)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
    def giveaway_summary(giveaway_id: int, as_json: bool) -> None:
        """A giveaway at a glance: entries, captcha, winners, deliveries, the draw and its proof."""
        stats = listing.giveaway_stats(giveaway_id)
        winners = draws.current_winners(giveaway_id)
        try:
            document = draws.draw_document(giveaway_id)
        except DrawNotFound:
            document = None
        summary = {
            "giveaway_id": giveaway_id,
            "entries": stats.total,
            "active": stats.active,
            "unsubscribed_at_draw": stats.unsubscribed,
            "captcha_pending": stats.captcha_pending,
            "entries_closed": bool(document and document["entries_closed"]),
            "draw_records": len(document["records"]) if document and document.get("records") else 0,
            "commitment": document["commitment"] if document else None,
            "last_record_hash": document["draw"]["record_hash"]
            if document and document.get("draw")
            else None,
            "winners": [
                {"position": w.position, "user_id": w.user_id, "username": w.username}
                for w in winners
            ],
            "delivered": stats.delivered,
        }
        if as_json:
            click.echo(json.dumps(summary, indent=2))
            return
        click.echo(f"giveaway {giveaway_id}")
        for key, value in summary.items():
            if key not in ("giveaway_id", "winners"):
                click.echo(f"  {key:22} {value}")
        click.echo(f"  winners ({len(winners)}):")
        for winner in summary["winners"]:
            name = f" @{winner['username']}" if winner["username"] else ""
            click.echo(f"    {winner['position']:>3}. {winner['user_id']}{name}")
