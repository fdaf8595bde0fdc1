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


def test_cached_steps_are_keyed_on_the_base_weights(tmp_path, tiny_dir, quick_plan):
    """Replacing the base checkpoint's weights changes the params every cached step is checked against."""
    import dataclasses
    import shutil

    from safetensors.torch import load_file, save_file

    from tabom.models.loading import checkpoint_fingerprint
    from tabom.reproduce.pipeline import Reproduction

    copy = tmp_path / "model"
    shutil.copytree(tiny_dir, copy)
    plan = dataclasses.replace(quick_plan, model=str(copy))
    before = Reproduction(plan, tmp_path / "repro").trajectory_params("math")
    assert before["model"] == f"{copy}@{checkpoint_fingerprint(copy)}"
    assert Reproduction(plan, tmp_path / "repro").trajectory_params("math") == before  # stable
    weights = load_file(str(copy / "model.safetensors"))
    name = next(iter(weights))
    weights[name] = weights[name] + 1e-3
    save_file(weights, str(copy / "model.safetensors"))
    after = Reproduction(plan, tmp_path / "repro").trajectory_params("math")
    assert after["model"] != before["model"] and after["model"].startswith(f"{copy}@")
