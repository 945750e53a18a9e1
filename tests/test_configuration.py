"""Configuration: each source's precedence, presets, files (bad, reloaded), schema, %config,
and the knobs driving the code that has them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run

from foxnb import FoxnbWarning
from foxnb import configuration as conf


class Clock:
    """A monotonic clock the test moves by hand (no sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """A project directory (the working directory) and an empty user config directory."""
    project, user = tmp_path / "proj", tmp_path / "user"
    (project / "sub").mkdir(parents=True)
    user.mkdir()
    monkeypatch.chdir(project / "sub")
    monkeypatch.setenv("FOXNB_CONFIG_DIR", str(user))
    for name in ("FOXNB_PRESET", "FOXNB_WORKERS", "FOXNB_AUTO_THRESHOLD"):
        monkeypatch.delenv(name, raising=False)
    clock = Clock()
    previous = conf.set_clock(clock)
    conf.configure(reset=True, cache_dir=tmp_path / "cache")
    try:
        yield {"project": project, "user": user, "tmp": tmp_path}
    finally:
        conf.set_clock(previous)
        monkeypatch.undo()
        conf.configure(reset=True)


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    st = path.stat()  # a new mtime even within the filesystem's time resolution
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000_000))


def test_each_source_beats_the_ones_below(place: dict[str, Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOXNB_PRESET", "safe")  # workers 2, retry 5, error_model python
    monkeypatch.setenv("FOXNB_WORKERS", "3")
    monkeypatch.setenv("FOXNB_AUTO_THRESHOLD", "7")
    write(place["user"] / "foxnb.yaml", "workers: 5\nauto_tolerance: 0.5\npanel_refresh: 2\n")
    write(place["project"] / "pyproject.toml",
          "[project]\nname = 'x'\n\n[tool.foxnb]\nworkers = 6\nauto_tolerance = 0.25\n")
    conf.configure(reset=True)
    cfg = conf.config()
    assert (cfg.retry_max_attempts, cfg.source("retry_max_attempts")) == (5, "preset safe")
    assert (cfg.auto_threshold, cfg.source("auto_threshold")) == \
        (7, "environment FOXNB_AUTO_THRESHOLD")
    assert cfg.panel_refresh == 2.0 and cfg.source("panel_refresh").startswith("user file ")
    assert cfg.workers == 6
    assert cfg.source("workers") == f"project file {place['project'] / 'pyproject.toml'}"
    assert cfg.auto_tolerance == 0.25 and cfg.source("task_history") == "default"
    conf.configure(workers=8)
    assert (conf.settings().workers, conf.config().source("workers")) == (8, "configure()")
    assert "project file" in str(conf.config()) and "<table>" in conf.config()._repr_html_()


def test_the_nearest_project_file_wins(place: dict[str, Path]) -> None:
    write(place["project"] / "foxnb.json", json.dumps({"task_history": 11}))
    write(place["project"] / "sub" / "foxnb.yaml", "task_history: 22\n")
    conf.configure(reset=True)
    assert conf.settings().task_history == 22


@pytest.mark.parametrize(("preset", "expected"), [
    ("dev", {"log_level": "INFO", "auto_threshold": 10}),
    ("fast", {"opt_level": 3, "error_model": "numpy"}),
    ("safe", {"retry_max_attempts": 5, "breaker_failure_rate": 0.25}),
    ("debug", {"executor": "inline", "cache_enabled": False, "log_level": "DEBUG"}),
])
def test_presets(place: dict[str, Path], monkeypatch: pytest.MonkeyPatch, preset: str,
                 expected: dict[str, Any]) -> None:
    monkeypatch.setenv("FOXNB_PRESET", preset)
    try:
        current = conf.configure(reset=True).as_dict()
        assert {k: current[k] for k in expected} == expected
    finally:
        monkeypatch.delenv("FOXNB_PRESET")
        conf.configure(reset=True, log_level=None)


def test_an_unknown_preset_lists_the_presets(place: dict[str, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOXNB_PRESET", "turbo")
    with pytest.raises(ValueError, match="FOXNB_PRESET='turbo' is not one of dev, fast, safe"):
        conf.configure(reset=True)
    monkeypatch.delenv("FOXNB_PRESET")


def test_a_bad_file_keeps_the_last_good_values_and_warns_once(place: dict[str, Path]) -> None:
    path = place["project"] / "foxnb.yaml"
    write(path, "workers: 3\n")
    conf.configure(reset=True)
    assert conf.settings().workers == 3
    failures = conf.reload_failures()
    write(path, "workers: many\nexecutor: threads\n")
    with pytest.warns(FoxnbWarning) as record:
        assert conf.reload(force=True) is False
    assert len(record) == 1
    message = str(record[0].message)
    assert str(path) in message and "workers='many'" in message
    assert "a whole number of worker threads, 1 or more" in message
    assert "keeping the last good configuration" in message
    assert conf.settings().workers == 3 and conf.reload_failures() == failures + 1
    conf.reload(force=True)  # the same bad file again: no second warning
    assert conf.reload_failures() == failures + 1


def test_a_typo_in_a_file_names_the_closest_setting(place: dict[str, Path]) -> None:
    path = place["project"] / "foxnb.json"
    write(path, json.dumps({"worker": 2}))
    problems = conf.validate_file(path)
    assert [(p.key, p.value) for p in problems] == [("worker", 2)]
    assert "did you mean 'workers'" in str(problems[0])
    with pytest.warns(FoxnbWarning, match="did you mean 'workers'"):
        conf.configure(reset=True)
    assert conf.settings().workers == 4  # the file's settings are not used
    write(path, "{not json")
    assert "cannot be read" in str(conf.validate_file(path)[0])
    write(path, json.dumps({"breaker_minimum_calls": 50}))
    assert [p.key for p in conf.validate_file(path)] == ["breaker_minimum_calls"]


def test_a_changed_file_is_picked_up_after_the_interval(place: dict[str, Path]) -> None:
    clock = Clock()
    conf.set_clock(clock)
    path = place["project"] / "foxnb.yaml"
    write(path, "task_history: 30\n")
    conf.configure(reset=True)
    seen: list[int] = []
    conf.on_change(lambda s: seen.append(s.task_history))
    assert conf.reload() is False  # first poll: nothing changed
    write(path, "task_history: 40\n")
    clock.now += 0.5
    assert conf.reload() is False and conf.settings().task_history == 30  # within 1 s
    clock.now += 0.6
    assert conf.reload() is True
    assert conf.settings().task_history == 40 and seen[-1] == 40
    path.unlink()
    clock.now += 2
    assert conf.reload() is True and conf.settings().task_history == 1000


def test_the_schema_lists_every_knob_and_forbids_others() -> None:
    schema = conf.schema()
    assert schema["additionalProperties"] is False
    assert set(conf.Settings._fields) <= set(schema["properties"])
    assert schema["properties"]["workers"]["default"] == 4
    assert "python" in json.dumps(schema["properties"]["error_model"])


def test_config_magic_sets_a_knob_for_the_session(ip: Any, place: dict[str, Path]) -> None:
    write(place["project"] / "foxnb.yaml", "auto_threshold: 9\n")
    conf.configure(reset=True)
    ip.run_line_magic("config", "FoxMagics.auto_threshold = 4")
    assert conf.settings().auto_threshold == 4
    assert conf.config().source("auto_threshold") == "%config FoxMagics.auto_threshold"
    ip.run_line_magic("config", "FoxMagics.workers = 'lots'")  # IPython prints the error
    assert conf.settings().workers == 4


def test_the_auto_threshold_drives_fox_cells_unless_the_cell_says(ip: Any,
                                                                   place: dict[str, Path]
                                                                   ) -> None:
    from foxnb.strategies.auto import strategy_of

    conf.configure(auto_threshold=7, auto_tolerance=0.125)
    run(ip, "%%fox\ndef f(x):\n    return x + 1\n")
    st = strategy_of(ip.user_ns["f"])
    assert st is not None and (st.threshold, st.tolerance) == (7, 0.125)
    run(ip, "%%fox --threshold 3\ndef g(x):\n    return x + 1\n")
    st = strategy_of(ip.user_ns["g"])
    assert st is not None and st.threshold == 3


def test_error_model_setting_reaches_foxjit_cells(ip: Any, place: dict[str, Path]) -> None:
    conf.configure(error_model="numpy")
    run(ip, "%%foxjit\ndef div(a, b):\n    return a / b\n")
    assert run(ip, "div(1.0, 0.0)") == float("inf")
    run(ip, "%%foxjit --error-model python\ndef div2(a, b):\n    return a / b\n")
    with pytest.raises(ZeroDivisionError):
        run(ip, "div2(1.0, 0.0)")


def test_the_default_orchestrator_follows_the_settings(place: dict[str, Path]) -> None:
    from foxnb.orchestrator import get_orchestrator, set_orchestrator

    previous = set_orchestrator(None)
    try:
        conf.configure(workers=3, task_history=5, breaker_open_seconds=7.5)
        orch = get_orchestrator()
        assert orch._pool.max_workers == 3
        for i in range(8):
            orch.run(lambda: None, kind="t", name=f"t{i}")
        assert len(orch.tasks(None)) == 5
        conf.configure(breaker_window=4, breaker_minimum_calls=2, task_history=6)
        assert orch._breaker_policy.window == 4  # for breakers created from now on
        assert orch._breaker_policy.open_for == 7.5
    finally:
        set_orchestrator(previous)


def test_log_settings_drive_foxnb_logs(place: dict[str, Path]) -> None:
    import logging

    logger = logging.getLogger("foxnb")
    before = list(logger.handlers)
    conf.configure(log_level="debug", log_format="json")
    try:
        added = [h for h in logger.handlers if h not in before]
        assert len(added) == 1 and logger.level == logging.DEBUG
        assert type(added[0].formatter).__name__ == "JsonFormatter"
    finally:
        conf.configure(log_level=None)
    assert logger.handlers == before


def test_settings_need_no_pydantic_without_a_file(place: dict[str, Path]) -> None:
    import subprocess
    import sys

    code = ("import sys, foxnb.configuration as c; c.settings(); c.reload(force=True); "
            "print('pydantic' in sys.modules, 'yaml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=place["project"], timeout=120)
    assert out.stdout.split() == ["False", "False"]
    write(place["project"] / "foxnb.yaml", "workers: 2\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=place["project"], timeout=120)
    assert out.stdout.split() == ["True", "True"]  # the check can fail



def test_reload_failures_are_a_metric(place: dict[str, Path]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from foxnb.metrics import exposition, make_registry

    def failures() -> float:
        text = exposition(make_registry())
        return next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                    if s.name == "foxnb_config_reload_failures_total")

    before = failures()
    write(place["project"] / "foxnb.yaml", "workers: many\n")
    with pytest.warns(FoxnbWarning):
        conf.reload(force=True)
    assert failures() == before + 1


def test_default_engine_panel_refresh_and_metrics_port_are_used(place: dict[str, Path]) -> None:
    import foxnb
    from foxnb.widgets.panel import Panel

    conf.configure(default_engine="python", panel_refresh=0.5, metrics_port=None)
    ns: dict[str, Any] = {}
    foxnb.compile_cell("def f(x):\n    return x + 1\n", ns)
    assert getattr(ns["f"], "__foxnb_plain__", False)  # built by the python engine
    panel = foxnb.widgets.panel(live=True, start=False)
    try:
        assert isinstance(panel, Panel) and panel._throttle.interval == 0.5
    finally:
        panel.close()
    with pytest.raises(conf.SettingsError, match=r"0\.25 or more"):
        conf.configure(panel_refresh=0.1)
