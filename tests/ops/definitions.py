"""The dashboard and the alert rules of ops/ as the tests read them: every PromQL expression,
with Grafana's variables replaced, and the series selectors inside it (parsed by promql-parser,
the same grammar as Prometheus's)."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import promql_parser
import pytest
import yaml

from tests.conftest import STRICT

OPS = Path(__file__).resolve().parents[2] / "ops"
DASHBOARD = OPS / "grafana" / "telegive-participant.json"
RULES = OPS / "prometheus" / "alerts.yml"
RULE_TESTS = OPS / "prometheus" / "alerts.test.yml"
JOB = "telegive-participant"  # the scrape job alerts.yml's process-down rule expects
PROMETHEUS_MADE = frozenset({"up"})  # series Prometheus records for every target itself


def tool(name: str) -> str:
    """The path of a binary of Debian's ``prometheus`` package; a test without it is skipped,
    or fails in strict mode (CI installs the package)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install prometheus provides it)"
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)
    return path


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def rules() -> list[dict]:
    """Every rule of alerts.yml."""
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def panels() -> list[dict]:
    """The dashboard's panels that show data (rows only group them)."""
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


@dataclass(frozen=True)
class Expression:
    """One PromQL expression of ops/ and where it comes from."""

    origin: str  # "panel 'Title' A" or "alert Name"
    text: str  # as written, Grafana variables included


def panel_expressions() -> list[Expression]:
    return [
        Expression(f"panel {panel['title']!r} {target['refId']}", target["expr"])
        for panel in panels()
        for target in panel["targets"]
    ]


def alert_expressions() -> list[Expression]:
    return [Expression(f"alert {rule['alert']}", rule["expr"]) for rule in rules()]


def grafana_variables(*, scrape_seconds: int, range_seconds: int) -> dict[str, str]:
    """The values Grafana gives the variables the queries use, for a graph whose points are one
    scrape apart ($__rate_interval: the larger of interval + scrape and four scrapes)."""
    return {
        "job": JOB,
        "__interval": f"{scrape_seconds}s",
        "__rate_interval": f"{max(2 * scrape_seconds, 4 * scrape_seconds)}s",
        "__range": f"{range_seconds}s",
    }


def substitute(text: str, variables: dict[str, str]) -> str:
    """``$name`` and ``${name}`` replaced; an unknown variable is an error, not left in."""

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"no value for the Grafana variable ${name}")
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def selectors(promql: str) -> list[tuple[str, str]]:
    """Each series selector of a PromQL expression: (metric name, the selector as PromQL)."""
    found: list[tuple[str, str]] = []

    def walk(node) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append((node.name, node.prettify()))
        elif isinstance(node, promql_parser.MatrixSelector):
            walk(node.vector_selector)
        elif isinstance(node, promql_parser.BinaryExpr):
            walk(node.lhs)
            walk(node.rhs)
        elif isinstance(node, promql_parser.Call):
            for argument in node.args:
                walk(argument)
        elif isinstance(node, promql_parser.AggregateExpr):
            walk(node.expr)
            if node.param is not None:
                walk(node.param)
        elif isinstance(
            node,
            promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr,
        ):
            walk(node.expr)

    walk(promql_parser.parse(promql))
    return found
