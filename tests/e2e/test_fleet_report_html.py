"""The fleet report's HTML page and the fleet's events, from the real fleet workflow on the local engine.

One fleet run (module fixture) of tests/scenarios/fleet-failures.yaml: a canary, then a wave in which EKS
fails two control plane updates (tolerated). WriteFleetReport writes fleet-report.html to the reports
bucket with the timeline read from the children's histories; headless Chromium (Debian's ``chromium``)
renders it and the screenshot's pixels prove the timeline is drawn.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from upgrader.fleet.html import PHASE_COLOURS, WAVE_COLOUR, render_html

from simulator.fleet import CLUSTER_STATE_CHANGE, FleetRun, fleet_input, run_fleet
from simulator.scenario import load_scenario
from simulator.simulation import Simulation

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
CHROMIUM = "/usr/bin/chromium"
# A legend swatch is 14 x 10 pixels: a colour seen on many more pixels than that is a drawn bar.
SWATCH_PIXELS = 14 * 10


@pytest.fixture(scope="module")
def fleet() -> tuple[FleetRun, dict[str, str]]:
    with Simulation(load_scenario(SCENARIOS / "fleet-failures.yaml")) as sim:
        request = fleet_input(
            sim,
            canary={"clusters": ["444444444444/eu-west-1/good-1"], "soakSeconds": 300},
            waves=[{"name": "wave-1", "size": 3, "maxConcurrency": 3, "failureTolerance": 2}],
        )
        request["clusters"] = request["clusters"][:4]  # good-1, bad-1, good-2, bad-2
        run = run_fleet(sim, "html-fleet", request)
        keys = {c["name"]: c["key"] for c in run.report["clusters"]} if run.report else {}
        return run, keys


def screenshot(page: Path, png: Path, profile: Path) -> Image.Image:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`; .ci/run does it)",
            pytrace=False,
        )
    completed = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            "--window-size=1400,900",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert png.is_file(), (
        f"chromium wrote no screenshot (exit {completed.returncode}): {completed.stderr[-2000:]}"
    )
    return Image.open(png).convert("RGB")


def colour_pixels(image: Image.Image) -> Counter[str]:
    wanted = {
        tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)): c for c in [WAVE_COLOUR, *PHASE_COLOURS.values()]
    }
    found: Counter[str] = Counter()
    for rgb, count in Counter(image.getdata()).items():
        if rgb in wanted:
            found[wanted[rgb]] += count
    return found


def test_write_fleet_report_puts_a_self_contained_html_page_beside_the_json(fleet):
    # Given the fleet run on the local engine (canary, then a wave with two EKS failures tolerated)
    run, keys = fleet
    assert run.result.status == "SUCCEEDED", run.result.cause
    # Then WriteFleetReport wrote fleet-report.html: no script, no URL, every cluster and wave named
    page = run.html
    assert page is not None and page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower() and not re.search(r"(https?:|//[a-z]|url\()", page, re.IGNORECASE)
    for name in ("good-1", "bad-1", "good-2", "bad-2"):
        assert keys[name] in page
    assert "wave wave-1: TOLERATED" in page
    # And each started cluster's timeline comes from its child execution's history: the control plane
    # phase lasts the scenario's 420 virtual seconds (first wait, then polls)
    for name in ("good-1", "good-2"):
        phases = run.cluster(keys[name])["timeline"]
        control_plane = [p for p in phases if p["phase"] == "control plane"]
        assert control_plane and 420 <= sum(p["seconds"] for p in control_plane) < 480


def test_the_timeline_is_drawn_in_headless_chromium(fleet, tmp_path):
    # Given the page the workflow wrote, opened from disk with no network
    run, _ = fleet
    page = tmp_path / "fleet-report.html"
    page.write_text(run.html or "")

    # When headless Chromium renders it
    image = screenshot(page, tmp_path / "page.png", tmp_path / "profile")

    # Then the wave bars and the clusters' control plane bars cover far more pixels than their legend swatches
    pixels = colour_pixels(image)
    assert pixels[WAVE_COLOUR] > 10 * SWATCH_PIXELS, pixels
    assert pixels[PHASE_COLOURS["control plane"]] > 10 * SWATCH_PIXELS, pixels


def test_without_timeline_data_only_the_legend_shows_those_colours(fleet, tmp_path):
    # Given the same report with no times at all (the check above must be able to fail)
    run, _ = fleet
    report: dict[str, Any] = copy.deepcopy(run.report or {})
    for item in [*report["waves"], *report["clusters"]]:
        item.pop("startedAt", None), item.pop("finishedAt", None), item.pop("timeline", None)
    page = tmp_path / "empty.html"
    page.write_text(render_html(report))

    # When Chromium renders it / Then no bar is drawn: the colours are the legend's swatches alone
    pixels = colour_pixels(screenshot(page, tmp_path / "empty.png", tmp_path / "profile"))
    assert pixels[PHASE_COLOURS["control plane"]] <= 2 * SWATCH_PIXELS, pixels
    assert pixels[WAVE_COLOUR] <= 2 * SWATCH_PIXELS, pixels


def test_hostile_values_are_escaped_everywhere():
    # Given a report whose cluster name, message and finding carry markup
    evil = '<img src=x onerror="alert(1)">'
    report = {
        "fleet": f"f{evil}",
        "outcome": "STOPPED",
        "stoppedBy": {"error": "FleetToleranceExceeded", "message": evil},
        "counts": {"FAILED": 1},
        "waves": [
            {
                "name": evil,
                "index": 0,
                "clusters": ["k"],
                "outcome": "STOPPED",
                "approval": {"status": "NOT_REQUIRED"},
            }
        ],
        "clusters": [
            {
                "key": f"111111111111/eu-west-1/{evil}",
                "name": evil,
                "wave": evil,
                "status": "BLOCKED",
                "error": "ReadinessBlocked",
                "message": evil,
                "details": {
                    "blocking": [{"rule": "DS001", "kind": "DaemonSet", "name": evil, "value": evil}]
                },
                "startedAt": "2026-01-05T09:00:00Z",
                "finishedAt": "2026-01-05T09:10:00Z",
                "timeline": [
                    {
                        "phase": "checks",
                        "states": [evil],
                        "startedAt": "2026-01-05T09:00:00Z",
                        "finishedAt": "2026-01-05T09:10:00Z",
                        "seconds": 600,
                    }
                ],
            }
        ],
    }
    # When it is rendered / Then no markup of the input survives, only its escaped text
    page = render_html(report)
    assert "<img" not in page and 'onerror="' not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_every_cluster_state_change_is_an_eventbridge_event(fleet):
    # Given the fleet run, whose events a rule on the default bus delivered to a queue
    run, keys = fleet
    # Then each cluster went RUNNING, then its outcome, with the child's error for the failed ones
    assert run.cluster_events(keys["good-1"]) == ["RUNNING", "SUCCEEDED"]
    assert run.cluster_events(keys["bad-1"]) == ["RUNNING", "FAILED"]
    failed = [
        e["detail"]
        for e in run.events
        if e["detail-type"] == CLUSTER_STATE_CHANGE and e["detail"]["status"] == "FAILED"
    ]
    assert {d["cluster"] for d in failed} == {keys["bad-1"], keys["bad-2"]}
    assert {d["error"] for d in failed} == {"ControlPlaneUpdateFailed"}
    assert all(e["source"] == "eks-fleet-upgrader" for e in run.events)
    # And the fleet's own start and finish, the finish with the outcome and where the report is
    fleet_events = [e["detail"] for e in run.events if e["detail-type"] == "EKS Fleet Upgrade State Change"]
    assert [d["status"] for d in fleet_events] == ["RUNNING", "SUCCEEDED_WITH_FAILURES"]
    assert fleet_events[-1]["report"]["htmlKey"] == "reports/html-fleet/fleet-report.html"
    assert fleet_events[-1]["counts"] == {"SUCCEEDED": 2, "FAILED": 2}


def test_sns_notifies_the_fleet_start_each_failed_cluster_and_the_finish(fleet):
    # Given the fleet run, with a queue subscribed to the stack's notifications topic
    run, keys = fleet
    # Then the topic got the start, one message per failed cluster, and the finish with the report's place
    subjects = [n["subject"] for n in run.notifications]
    assert subjects[0] == "EKS fleet upgrade started" and subjects[-1] == "EKS fleet upgrade finished"
    failures = sorted(
        n["message"] for n in run.notifications if n["subject"] == "EKS fleet upgrade: cluster failed"
    )
    assert failures == sorted(
        f"EKS fleet upgrade html-fleet: cluster {keys[name]} is FAILED (ControlPlaneUpdateFailed)."
        for name in ("bad-1", "bad-2")
    )
    assert run.notifications[-1]["message"].endswith("/reports/html-fleet/fleet-report.html")
    assert "SUCCEEDED_WITH_FAILURES" in run.notifications[-1]["message"]
