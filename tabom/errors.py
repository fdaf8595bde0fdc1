"""Expected failures -> one line for the user; everything else is a bug and keeps its traceback.

`tabom.cli.main` runs every command through :func:`exit_on_failure`, which asks
:func:`failure_message` about the exception a command raises. Bad input
(``ValueError`` and its subclasses, which code raises with ``FILE:LINE: field: ...``), the
operating system refusing a file operation (missing, a directory where a file was expected, no
permission, a read-only or full disk), a file that is not UTF-8 text, input nested too deeply to
parse, a corrupt safetensors file, a number too large, and running out of memory are expected:
the command ends with ``error: <message>`` and exit status 2. Any other exception is a bug in
tabom: ``failure_message`` returns None and the traceback is shown.

    exit_on_failure(app)                     # error: runs/x: Read-only file system (choose a writable ...)
    failure_message(KeyError("x"))           # None: a bug, the traceback is shown
    with options_named({"n_train": "--n-train"}):
        make_plan(...)                       # ValueError "n_train: ..." -> "--n-train: ..."

An OSError raised by a file object's ``write``/``flush`` (a full disk) carries no file name; the
file is then looked up in the innermost frames of the traceback (:func:`file_in_traceback`).
"""

from __future__ import annotations

import contextlib
import errno
import io
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType

EXIT_ERROR = 2
"""Exit status of an expected failure (bad input, file-system refusal)."""
EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""

OS_HINTS: dict[int, str] = {
    errno.EROFS: "choose a writable output folder",
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EDQUOT: "free some space or write elsewhere",
    errno.EACCES: "choose another path or change its permissions",
    errno.EPERM: "choose another path or change its permissions",
    errno.EISDIR: "a file was expected",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "choose another path",
}
"""What to do about the errno values a user can cause or fix, added after the system's words."""

FRAMES_SEARCHED = 4
"""Innermost traceback frames searched for the file a name-less OSError (or a decode error) concerns."""


class UsageError(ValueError):
    """Bad input that no file or line can be named for (a setting out of range, a missing device)."""


def one_line(text: str) -> str:
    """``text`` with its line breaks (and the spaces around them) folded into single spaces."""
    return re.sub(r"\s*\n\s*", " ", text.strip())


def name_option(message: str, options: Mapping[str, str]) -> str:
    """``message`` with its leading field name written as the command-line option that sets it.

        name_option("n_train: must be >= 1, got 0", {"n_train": "--n-train"})
        # -> "--n-train: must be >= 1, got 0"

    Configs raise ``field: ...`` (they are used from Python too); a command maps the prefixes
    (``"model: hidden_size"`` is one) to its options. A message with no mapped prefix is kept.
    """
    for prefix, option in options.items():
        if message.startswith(prefix + ": "):
            return option + message[len(prefix):]
    return message


@contextlib.contextmanager
def options_named(options: Mapping[str, str]) -> Iterator[None]:
    """Re-raise a ValueError from inside whose message starts with a field of ``options`` as a
    `UsageError` naming the option instead (:func:`name_option`); other exceptions pass unchanged.

        with options_named({"n_train": "--n-train"}):
            plan = make_plan(...)            # ValueError("n_train: ...") -> "--n-train: ..."
    """
    try:
        yield
    except ValueError as exc:
        renamed = name_option(str(exc), options)
        if renamed == str(exc):
            raise
        raise UsageError(renamed) from exc


def file_in_traceback(tb: TracebackType | None, frames: int = FRAMES_SEARCHED) -> str | None:
    """The name of the file object held by the innermost of the last ``frames`` Python frames, or None.

    A ``write`` that fails because the disk is full, or a ``read`` that meets bytes that are not
    UTF-8, raises without a file name; the frame that called it (``Path.write_text``,
    ``Path.read_text``, a reader looping over ``open(path)``) holds the open file object, whose
    ``name`` is the path. Only file objects with a string name count (not sockets or descriptors).
    """
    chain = []
    while tb is not None:
        chain.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(chain[-frames:]):
        for value in frame.f_locals.values():
            if isinstance(value, io.IOBase) and isinstance(getattr(value, "name", None), str):
                return value.name
    return None


def os_error_message(exc: OSError, tb: TracebackType | None = None) -> str:
    """``PATH: <system's reason> (<what to do>)`` for an OSError; the raiser's text when it wrote its own.

    An OSError raised with a message of tabom's (``FileNotFoundError("x: not a model folder")``)
    has no ``strerror``: its text is kept as is. One from the system names ``filename`` (and
    ``filename2`` for a rename); a name-less one (a failed write) is named from the traceback.
    """
    if exc.strerror is None:
        return one_line(str(exc))
    where = exc.filename if exc.filename is not None else file_in_traceback(tb)
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    hint = OS_HINTS.get(exc.errno or 0)
    text = exc.strerror + (f" ({hint})" if hint else "")
    return one_line(f"{where}: {text}" if where is not None else text)


def _torch_out_of_memory(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")  # never imported here just to ask
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    return oom is not None and isinstance(exc, oom)


def failure_message(exc: BaseException) -> str | None:
    """The one-line message of an expected failure, or None when ``exc`` is a bug (show its traceback).

    Args:
        exc: what a command raised.

    Returns:
        The text to print after ``error: ``, on one line, naming the file where one is known.
    """
    tb = exc.__traceback__
    if isinstance(exc, UnicodeDecodeError):
        where = file_in_traceback(tb)
        text = (f"not UTF-8 text ({exc.reason} at byte {exc.start}): "
                "a binary file where a text file was expected?")
        return f"{where}: {text}" if where else f"a file is {text}"
    if isinstance(exc, OSError):
        return os_error_message(exc, tb)
    if isinstance(exc, ValueError):
        return one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, RecursionError):
        where = file_in_traceback(tb)
        text = f"input nested too deeply to read ({one_line(str(exc))})"
        return f"{where}: {text}" if where else text
    if type(exc).__name__ == "SafetensorError":  # safetensors' error type, without importing it
        what = "could not write a safetensors file" if "while serializing" in str(exc) else "corrupt or unreadable safetensors file"
        return f"{what}: {one_line(str(exc))}"
    if isinstance(exc, OverflowError):
        return f"a number is too large: {one_line(str(exc))}"
    if _torch_out_of_memory(exc):
        return (f"out of device memory: {one_line(str(exc)).split('. ')[0]} "
                "(lower the batch size or the lengths, or use a larger device)")
    if isinstance(exc, MemoryError):
        return "out of memory: lower the sizes asked for (batch size, lengths, counts) or use a machine with more memory"
    return None


def exit_on_failure(run: Callable[[], object]) -> None:
    """Call ``run()``; an expected failure prints ``error: <message>`` on stderr and exits 2.

    A bug (:func:`failure_message` is None) is re-raised with its traceback; Ctrl-C exits 130
    quietly. With ``TABOM_DEBUG=1`` in the environment every failure keeps its traceback.
    What `tabom.cli.main` and the module command lines (``python -m tabom.pretraining.probe``) run.
    """
    import os

    debug = bool(os.environ.get("TABOM_DEBUG"))
    try:
        run()
    except KeyboardInterrupt:
        if debug:
            raise
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001  (sorted: expected failures, or a bug re-raised)
        message = failure_message(exc)
        if message is None or debug:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
