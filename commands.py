"""Maintenance as ``flask`` commands (run them where the service's environment is set)."""

from __future__ import annotations

import json
import logging
import signal
import threading

import click
from flask import Flask

from services import captcha, draws, listing, pending, subscription
from services.errors import DrawNotFound
from utils.timeutil import utcnow

log = logging.getLogger("telegive.commands")


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

    @app.cli.command("verify-pending")
    @click.option(
        "--workers",
        type=click.IntRange(1, 64),
        default=4,
        show_default=True,
        help="Entries verified at a time.",
    )
    @click.option(
        "--max-seconds",
        type=click.FloatRange(min=1),
        default=240.0,
        show_default=True,
        help="Take no new entry after this long (not with --loop).",
    )
    @click.option(
        "--loop",
        is_flag=True,
        help="Keep running until SIGTERM or SIGINT, draining the queue whenever entries are due.",
    )
    @click.option(
        "--interval",
        type=click.FloatRange(min=0.5),
        default=5.0,
        show_default=True,
        help="With --loop: seconds to wait after a drain before looking again.",
    )
    def verify_pending(workers: int, max_seconds: float, loop: bool, interval: float) -> None:
        """Confirm entries admitted pending verification (SUBSCRIPTION_OVERFLOW=defer): ask
        Telegram within each bot's spare budget; subscribed → active, not subscribed →
        excluded (audited, kept), cannot verify → retried later. Safe to run on several
        instances at once. Without --loop: until nothing is due, then exit (a cron job)."""
        if not loop:
            _echo_run(pending.verify_pending(workers=workers, max_seconds=max_seconds))
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda _signum, _frame: stop.set())
        click.echo(f"verifying pending entries every {interval:g} s until stopped")
        while not stop.is_set():
            try:
                run = pending.verify_pending(workers=workers, stop=stop)
            except Exception:
                log.exception("verify-pending run failed; trying again")
            else:
                if run.outcomes:
                    _echo_run(run)
            stop.wait(interval)
        click.echo("stopped")

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
            "subscription_pending": stats.subscription_pending,
            "excluded": stats.excluded,
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


def _echo_run(run: pending.VerifierRun) -> None:
    outcomes = ", ".join(f"{name} {count}" for name, count in sorted(run.outcomes.items()))
    left = run.left
    oldest = left.oldest_age(utcnow()) if left else 0.0
    click.echo(
        f"{outcomes or 'nothing to verify'} in {run.seconds:.1f} s; "
        f"still pending {left.pending if left else 0} "
        f"(due now {left.due if left else 0}, oldest {oldest:.0f} s)"
    )
