"""Every public function, class and method of the package carries a docstring and complete type hints.

Read with ``ast`` from the source files (nothing is imported): module-level functions, classes, and
the methods of public classes whose names do not start with ``_`` (so ``__init__`` and other dunders
are left out). A function needs an annotation on every parameter but ``self``/``cls`` (``*args`` and
``**kwargs`` included) and a return annotation. A failure lists ``path:line name`` of each offender.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tabom"

FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
Function = ast.FunctionDef | ast.AsyncFunctionDef


def _missing_hints(fn: Function) -> list[str]:
    """Names of the parameters without an annotation, plus ``return`` when the return has none."""
    args = fn.args
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    params += [a for a in (args.vararg, args.kwarg) if a is not None]
    missing = [a.arg for a in params if a.annotation is None and a.arg not in ("self", "cls")]
    return missing + (["return"] if fn.returns is None else [])


def public_api_problems(source: str, path: str) -> list[str]:
    """``path:line name: what is missing`` for each public item of ``source`` lacking a docstring or hints."""
    problems: list[str] = []

    def check(node: Function | ast.ClassDef, name: str) -> None:
        missing = [] if ast.get_docstring(node) is not None else ["docstring"]
        if not isinstance(node, ast.ClassDef):
            hints = _missing_hints(node)
            missing += [f"annotation of {', '.join(hints)}"] if hints else []
        if missing:
            problems.append(f"{path}:{node.lineno} {name}: no {' or '.join(missing)}")

    for node in ast.parse(source).body:
        if not isinstance(node, (*FUNCTIONS, ast.ClassDef)) or node.name.startswith("_"):
            continue
        check(node, node.name)
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, FUNCTIONS) and not item.name.startswith("_"):
                    check(item, f"{node.name}.{item.name}")
    return problems


def test_every_public_item_has_a_docstring_and_type_hints() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20, f"{PACKAGE}: expected the package's sources, found {len(files)} files"
    problems = [p for f in files
                for p in public_api_problems(f.read_text(encoding="utf-8"), str(f.relative_to(ROOT)))]
    assert not problems, f"{len(problems)} public items lack a docstring or hints:\n" + "\n".join(problems)


def test_the_checker_catches_what_it_should() -> None:
    source = '''
def undocumented(x: int) -> int:
    return x


def unannotated(x, *args: int, **kwargs) -> None:
    """Documented, but x and **kwargs have no annotation."""


def no_return(x: int):
    """No return annotation."""


def _private(x):
    return x


class Public:
    def method(self, y: int) -> int:
        return y

    @classmethod
    def build(cls, z: str) -> "Public":
        """cls needs no annotation."""
        return cls()

    def __init__(self, a):
        pass

    def _helper(self, b):
        pass


class _Hidden:
    def method(self, y):
        pass


def fine(a: int, /, b: str, *args: float, c: bool = True, **kwargs: object) -> None:
    """Everything annotated."""
'''
    assert public_api_problems(source, "m.py") == [
        "m.py:2 undocumented: no docstring",
        "m.py:6 unannotated: no annotation of x, kwargs",
        "m.py:10 no_return: no annotation of return",
        "m.py:18 Public: no docstring",
        "m.py:19 Public.method: no docstring",
    ]
