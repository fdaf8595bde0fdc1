"""code_trace: the family's own arithmetic agrees with really running its programs."""

import contextlib
import io

from tabom.tasks import get_family


def test_answers_match_running_the_generated_programs() -> None:
    """exec() here runs only programs this family generated (never model output)."""
    fam = get_family("code_trace")
    for p in fam.problems("train", 300, seed=5):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(p.meta["program"], {})  # our own generated code
        assert buf.getvalue().strip() == p.answer, p.prompt
        assert p.prompt.endswith(p.meta["program"])


def test_all_three_shapes_appear() -> None:
    kinds = {p.meta["kind"] for p in get_family("code_trace").problems("train", 100, seed=0)}
    assert kinds == {"straight", "loop", "branch"}
