"""Maintenance as ``flask`` commands (run them where the service's environment is set)."""

from __future__ import annotations

import click
from flask import Flask

from services import captcha, draws


def register_commands(app: Flask) -> None:
    """Attach the maintenance commands to the ``flask`` CLI."""

    @app.cli.command("clean-captcha")
    def clean_captcha() -> None:
        """Forget expired captcha challenges, ended lockouts and stale failures."""
        removed = captcha.clean_expired_challenges()
        click.echo(f"removed {removed} expired captcha record(s)")

    @app.cli.command("verify-draws")
    @click.option("--giveaway-id", type=int, default=None, help="Only this giveaway.")
    def verify_draws(giveaway_id: int | None) -> None:
        """Check every draw chain: hashes, links, seeds, winners, entrant lists, winner flags."""
        results = draws.verify_all_chains(giveaway_id)
        broken = {gid: problems for gid, problems in results.items() if problems}
        for gid, problems in sorted(broken.items()):
            click.echo(f"giveaway {gid}: BROKEN")
            for problem in problems:
                click.echo(f"  - {problem}")
        click.echo(f"{len(results)} giveaway(s) checked, {len(broken)} broken")
        if broken:
            raise SystemExit(1)
