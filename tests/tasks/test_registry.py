"""Registry lookups, the pre-training mixture, and light imports."""

import subprocess
import sys

import pytest

from tabom.tasks import FAMILIES, families_for, get_family, mixture


def test_families_and_domains() -> None:
    assert FAMILIES == {
        "math_chain": "math", "math_linear": "math", "code_trace": "code",
        "code_func": "code", "ood_format": "ood", "ood_string": "ood",
    }
    assert families_for("math") == ["math_chain", "math_linear"]
    assert families_for("code") == ["code_trace", "code_func"]
    assert families_for("ood") == ["ood_format", "ood_string"]
    with pytest.raises(ValueError, match="domain"):
        families_for("art")


def test_get_family_unknown_name_and_bad_argument() -> None:
    with pytest.raises(ValueError, match="unknown task family 'nope'"):
        get_family("nope")
    with pytest.raises(ValueError, match="bad constructor arguments"):
        get_family("math_chain", no_such_knob=1)
    assert get_family("ood_string").name == "ood_string"


def test_mixture_counts_determinism_and_shuffle() -> None:
    mix = mixture("val", 20, seed=1)
    assert len(mix) == 20 * len(FAMILIES)
    assert {p.family for p in mix} == set(FAMILIES)
    assert mix == mixture("val", 20, seed=1)
    assert [p.family for p in mix[:20]] != [mix[0].family] * 20  # interleaved, not blocks


def test_mixture_options_reach_the_family() -> None:
    mix = mixture("train", 10, seed=0, families=["math_chain"], options={"math_chain": {"max_ops": 1, "min_ops": 1}})
    assert len(mix) == 10 and all(p.native.count("\n") == 1 for p in mix)
    with pytest.raises(ValueError, match="options"):
        mixture("train", 1, families=["math_chain"], options={"code_func": {}})


def test_mixture_cycle_repeats_a_small_family_to_keep_the_mix_balanced() -> None:
    opts = {"math_linear": {"a_range": (2, 2), "b_range": (1, 1), "x_range": (0, 9), "forms": ("ax+b",)}}
    few = get_family("math_linear", **opts["math_linear"]).problems("train", 50, at_most=True)
    assert 0 < len(few) < 10  # 10 keys in all, about 80% of them in train
    with pytest.raises(ValueError, match="could only find"):
        mixture("train", 20, families=["math_linear"], options=opts)
    mix = mixture("train", 20, families=["math_linear", "ood_string"], options=opts, cycle=True)
    lin = [p for p in mix if p.family == "math_linear"]
    assert len(lin) == 20 and len(mix) == 40
    assert {p.id for p in lin} == {p.id for p in few}  # every distinct problem, repeated
    none = {"math_linear": {**opts["math_linear"], "x_range": (1, 1)}}  # its one key is not in train
    assert get_family("math_linear", **none["math_linear"]).problems("train", 1, at_most=True) == []
    with pytest.raises(ValueError, match="no train problems"):
        mixture("train", 5, families=["math_linear"], options=none, cycle=True)


def test_import_does_not_pull_in_torch() -> None:
    code = "import sys, tabom.tasks; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
