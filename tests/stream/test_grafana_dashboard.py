"""The Grafana dashboard in docs/ against what the metrics endpoint really serves: every
metric and label its queries use, per camera through the ``source`` variable."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fiqa_stream.config import parse_config
from fiqa_stream.sinks.config import WebhookSinkConfig
from fiqa_stream.sinks.webhook import WebhookSink
from fiqa_stream.stream.metrics import MetricsServer, PipelineMetrics, SourceSnapshot
from fiqa_stream.stream.pipeline import Pipeline

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
METRIC = re.compile(r"\bfiqa_[a-z0-9_]+")
SELECTOR = re.compile(r"\b(fiqa_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="')
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable."""
    found = [(panel["title"], target["expr"]) for panel in panels(board) for target in panel.get("targets", [])]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found.append((f"variable ${variable['name']}", query["query"] if isinstance(query, dict) else query))
    return found


def served(text: str) -> dict[str, set[str]]:
    """Metric series with samples in a /metrics text, each with the label names it carries."""
    labels: dict[str, set[str]] = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            labels.setdefault(match[1], set()).update(LABEL.findall(match[2] or ""))
    return labels


def declared(text: str) -> set[str]:
    """Series names a /metrics text declares in its TYPE lines, histograms with their series."""
    names: set[str] = set()
    for kind_line in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        name, kind = kind_line
        names.add(name)
        if kind == "histogram":
            names.update(name + suffix for suffix in HISTOGRAM_SERIES)
    return names


def scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_the_dashboard_is_grafana_json_with_a_prometheus_datasource_variable_used_by_every_panel() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["source"]["multi"] and variables["source"]["includeAll"]
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
            assert METRIC.search(target["expr"]), f"{panel['title']}: no fiqa_ metric in {target['expr']!r}"


def test_every_metric_the_dashboard_queries_is_declared_by_the_metrics_server(tmp_path: Path) -> None:
    metrics = PipelineMetrics()
    metrics.watch(lambda: ([SourceSnapshot("door", "streaming", 10, 5, 1, 0, 3, 0, None)], {"webhook": 0}))
    sink = WebhookSink(WebhookSinkConfig(url="http://127.0.0.1:9/", journal={"path": tmp_path / "j.sqlite3"}))
    metrics.watch_sinks([sink])
    server = MetricsServer(metrics, "127.0.0.1", 0, down_after=10.0)
    try:
        names = declared(scrape(server.address))
    finally:
        server.close()
        sink.close()
    missing = {f"{where}: {name}" for where, expr in queries(dashboard()) for name in METRIC.findall(expr)
               if name not in names}
    assert not missing, f"the dashboard queries metrics the process does not serve: {sorted(missing)}"


@pytest.mark.slow
def test_a_running_camera_pipeline_serves_every_metric_and_label_the_dashboard_queries(
    rtsp_camera: Any, tmp_path: Path
) -> None:
    config = parse_config({
        "sources": [{"url": rtsp_camera.url(), "id": "door", "fps": 5}],
        "selection": {"policy": "periodic", "period": 0.5, "min_track_length": 2},
        "sinks": [{"type": "directory", "path": str(tmp_path / "out")},
                  # An endpoint that is down: its events wait in the journal, as in an outage.
                  {"type": "webhook", "url": "http://127.0.0.1:9/", "retries": 0,
                   "journal": {"path": str(tmp_path / "webhook.sqlite3")}}],
        "metrics": {"enabled": True, "port": 0},
    })
    pipeline = Pipeline(config)
    stop = threading.Event()
    thread = threading.Thread(target=pipeline.run, args=(stop,), daemon=True)
    thread.start()
    assert pipeline.metrics_server is not None
    address = pipeline.metrics_server.address
    wanted = {name for _, expr in queries(dashboard()) for name in METRIC.findall(expr)}
    try:
        deadline = time.monotonic() + 90
        while True:  # best shots and latencies have samples once the camera played a while
            text = scrape(address)
            series = served(text)
            if wanted <= set(series) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        stop.set()
        thread.join(60)
    assert not wanted - set(series), f"not served by a running pipeline: {sorted(wanted - set(series))}"
    assert 'fiqa_source_up{source="door"} 1.0' in text
    for where, expr in queries(dashboard()):
        used = set(METRIC.findall(expr))
        carried = set().union(*(series[name] for name in used))
        for name, matchers in SELECTOR.findall(expr):
            for label in MATCHER.findall(matchers):
                assert label in series[name], f"{where}: {name} has no label '{label}'"
        for grouping in GROUPING.findall(expr):
            for label in filter(None, (part.strip() for part in grouping.split(","))):
                assert label in carried, f"{where}: no metric of {sorted(used)} has the label '{label}'"
        if any("source" in series[name] for name in used) and not where.startswith("variable"):
            assert 'source=~"$source"' in expr, f"{where}: a per-camera query must follow the $source variable"
