"""Maintenance as ``flask`` commands (run them where the service's environment is set)."""

from __future__ import annotations

import click
from flask import Flask

from services import captcha


def register_commands(app: Flask) -> None:
    """Attach the maintenance commands to the ``flask`` CLI."""

    @app.cli.command("clean-captcha")
    def clean_captcha() -> None:
        """Forget expired captcha challenges, ended lockouts and stale failures."""
        removed = captcha.clean_expired_challenges()
        click.echo(f"removed {removed} expired captcha record(s)")
