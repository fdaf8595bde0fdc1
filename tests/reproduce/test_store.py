"""The reproduction store: completion markers, staleness, and the compute time they record."""

from __future__ import annotations

import time

from tabom.reproduce.store import Store, read_json, write_json


def test_step_runs_once_and_marks_params_and_seconds(tmp_path):
    store = Store(tmp_path)
    calls = []

    def make():
        calls.append(1)
        time.sleep(0.05)
        write_json(tmp_path / "a.json", {"x": 1})

    assert store.step("a", tmp_path / "a.json", {"k": 1}, make) is True
    assert store.step("a", tmp_path / "a.json", {"k": 1}, make) is False
    assert calls == [1]
    marker = read_json(tmp_path / "a.json.done")
    assert marker["params"] == {"k": 1} and marker["seconds"] >= 0.05
    assert store.stale(tmp_path / "a.json", {"k": 2}) and not store.done(tmp_path / "a.json", {"k": 2})


def test_compute_seconds_adds_every_marker_across_invocations(tmp_path):
    first = Store(tmp_path)
    first.mark(tmp_path / "one.json", {}, seconds=1.5)
    (tmp_path / "run").mkdir()
    first.mark(tmp_path / "run", {}, seconds=2.25)  # a folder artifact: run/.done
    first.mark(tmp_path / "old.json", {})  # an older marker without seconds counts as 0
    (tmp_path / "broken.json.done").write_text("{not json")
    assert Store(tmp_path).compute_seconds() == 3.75
