"""The dashboard imports as is and shows what operators asked for; every alert says what to check
first and why its threshold; promtool accepts the rules and their unit tests pass (the series fed
there say which alerts fire and which do not)."""

from __future__ import annotations

import re
import subprocess

import promql_parser
import yaml

from tests.ops.definitions import (
    RULE_TESTS,
    RULES,
    alert_expressions,
    dashboard,
    grafana_variables,
    panel_expressions,
    panels,
    rules,
    selectors,
    substitute,
    tool,
)

# What the issue asks the dashboard to show, as (metric, a matcher it must be shown with).
REQUIRED_SERIES = [
    ("telegive_participant_registrations_total", ""),
    ("telegive_participant_captcha_outcomes_total", ""),
    ("telegive_participant_captcha_lockouts_total", ""),
    ("telegive_participant_subscription_checks_total", ""),
    ("telegive_participant_outgoing_requests_total", 'peer="telegram"'),
    ("telegive_participant_telegram_budget_refusals_total", ""),
    ("telegive_participant_telegram_budget_wait_seconds_bucket", ""),
    ("telegive_participant_telegram_flood_waits_total", ""),
    ("telegive_participant_draws_total", ""),
    ("telegive_participant_http_request_duration_seconds_sum", "select-winners"),
    ("telegive_participant_beacon_fetches_total", ""),
    ("telegive_participant_beacon_fetch_duration_seconds_bucket", ""),
    ("telegive_participant_outgoing_requests_total", ""),
    ("telegive_participant_outgoing_requests_total", 'outcome="circuit_open"'),
    ("telegive_participant_http_requests_total", ""),
    ("telegive_participant_http_request_duration_seconds_bucket", ""),
    ("telegive_participant_error_responses_total", ""),
    ("telegive_participant_db_pool_connections_in_use", ""),
    ("telegive_participant_db_pool_size", ""),
    ("telegive_participant_pending_verification_queue", ""),
    ("telegive_participant_pending_verification_queue_due", ""),
    ("telegive_participant_pending_verification_oldest_seconds", ""),
    ("telegive_participant_pending_verifications_total", ""),
    ("telegive_participant_pending_verifications_total", 'outcome="enqueued"'),
]
# The pending-verification gauges: every instance reads the same queue from the database, so a
# sum over instances would show it once per instance.
QUEUE_GAUGES = {
    "telegive_participant_pending_verification_queue",
    "telegive_participant_pending_verification_queue_due",
    "telegive_participant_pending_verification_oldest_seconds",
}
# What the issue asks operators to be woken for.
REQUIRED_ALERTS = {
    "TelegiveParticipantRegistrationsFailing",
    "TelegiveParticipantDatabaseUnavailable",
    "TelegiveParticipantRedisUnavailable",
    "TelegiveParticipantPeerCircuitOpen",
    "TelegiveParticipantTelegramFloodWaits",
    "TelegiveParticipantDrawFailing",
    "TelegiveParticipantPendingVerificationsNotDraining",
    "TelegiveParticipantDown",
}


def test_the_dashboard_imports_as_is_and_asks_for_its_datasource():
    document = dashboard()
    variables = {variable["name"]: variable for variable in document["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "__inputs" not in document  # nothing to fill in at import: the variable chooses
    assert document["uid"] and document["title"]
    ids = [panel["id"] for panel in document["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
    assert variables["job"]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_the_panels_do_not_overlap():
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        for column in range(box["x"], box["x"] + box["w"]):
            for line in range(box["y"], box["y"] + box["h"]):
                assert (column, line) not in taken, (panel["title"], taken.get((column, line)))
                taken[(column, line)] = panel["title"]


def test_every_panel_says_what_to_read_from_it():
    for panel in panels():
        description = panel.get("description", "")
        # A sentence or more: what the lines are and what a change in them means.
        assert len(description) >= 150 and description.count(".") >= 2, panel["title"]
        assert panel["targets"], panel["title"]


def test_the_dashboard_shows_what_the_issue_asks_for():
    variables = grafana_variables(scrape_seconds=15, range_seconds=3600)
    shown = [
        found
        for expression in panel_expressions()
        for found in selectors(substitute(expression.text, variables))
    ]
    for metric, matcher in REQUIRED_SERIES:
        assert any(name == metric and matcher in text for name, text in shown), (metric, matcher)


def test_the_queue_is_never_counted_once_per_instance():
    variables = grafana_variables(scrape_seconds=15, range_seconds=3600)

    def gauges(node, summed: bool = False) -> list[tuple[str, bool]]:
        """Each queue gauge the expression reads, and whether a sum or count aggregates it."""
        if isinstance(node, promql_parser.VectorSelector):
            return [(node.name, summed)] if node.name in QUEUE_GAUGES else []
        if isinstance(node, promql_parser.AggregateExpr):
            return gauges(node.expr, summed or str(node.op) in ("sum", "count"))
        children = [
            getattr(node, name)
            for name in ("lhs", "rhs", "expr", "vector_selector")
            if getattr(node, name, None) is not None
        ]
        children += list(getattr(node, "args", None) or [])
        return [found for child in children for found in gauges(child, summed)]

    read = []
    for expression in panel_expressions() + alert_expressions():
        found = gauges(promql_parser.parse(substitute(expression.text, variables)))
        assert not [name for name, summed in found if summed], expression.origin
        read += found
    assert {name for name, _ in read} == QUEUE_GAUGES


def test_every_alert_has_a_summary_a_first_check_and_a_reasoned_threshold():
    defined = rules()
    assert {rule["alert"] for rule in defined} >= REQUIRED_ALERTS
    for rule in defined:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert "Check first" in rule["annotations"]["description"], rule["alert"]
    # The reason for each threshold is the comment block right above its rule.
    lines = RULES.read_text().splitlines()
    for index, line in enumerate(lines):
        if match := re.match(r"\s*- alert: (\w+)", line):
            above = []
            for previous in reversed(lines[:index]):
                if not previous.strip().startswith("#"):
                    break
                above.append(previous)
            assert len(above) >= 2, f"{match.group(1)} has no comment saying why its threshold"


def test_every_alert_has_a_case_that_fires_and_one_that_must_not():
    cases = [
        case for group in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in group["alert_rule_test"]
    ]  # fmt: skip
    for rule in rules():
        name = rule["alert"]
        assert any(case["alertname"] == name and case["exp_alerts"] for case in cases), name
        assert any(case["alertname"] == name and not case["exp_alerts"] for case in cases), name


def test_every_expression_parses_with_grafanas_variables_filled_in():
    variables = grafana_variables(scrape_seconds=15, range_seconds=3600)
    for expression in panel_expressions() + alert_expressions():
        assert selectors(substitute(expression.text, variables)), expression.origin


def test_promtool_accepts_the_rules():
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass():
    result = subprocess.run(
        [tool("promtool"), "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
