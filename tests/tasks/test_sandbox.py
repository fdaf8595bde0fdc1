"""The sandbox contains infinite loops, memory hogs, network use, forks and stray writes.

Escapes that target the isolation itself are in tests/reliability/test_reliability_sandbox.py;
here: the limits, normal programs, and what happens where isolation is unavailable.
"""

import os
import socket
import sys
import time
import warnings
from pathlib import Path

import pytest

from tabom.tasks import sandbox
from tabom.tasks.sandbox import Isolation, SandboxUnavailableError, run_many, run_python


def test_correct_program_runs_and_returns_stdout_and_stdin() -> None:
    r = run_python("import sys\nprint(6*7)\nprint(sys.stdin.read().upper())", stdin="hi")
    assert r.ok and r.returncode == 0 and not r.timed_out
    assert r.stdout == "42\nHI\n"


def test_error_exit_is_not_ok_and_stderr_is_kept() -> None:
    r = run_python("raise ValueError('boom')")
    assert not r.ok and r.returncode == 1
    assert "ValueError: boom" in r.stderr


def test_infinite_loop_times_out_and_the_call_returns() -> None:
    t0 = time.monotonic()
    r = run_python("while True:\n    pass", timeout_s=1.0)
    assert r.timed_out and not r.ok
    assert time.monotonic() - t0 < 5.0


def test_allocating_4_gb_fails() -> None:
    r = run_python("x = bytearray(4 * 1024 ** 3)\nprint(len(x))", memory_mb=512)
    assert not r.ok and "MemoryError" in r.stderr and r.stdout == ""


def test_network_connect_to_localhost_fails() -> None:
    """A listener in this process on 127.0.0.1 sees no connection from the sandbox."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    try:
        for code in (
            f"import socket\ns = socket.create_connection(('127.0.0.1', {port}))\nprint('connected')",
            f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))\nprint('connected')",
        ):
            r = run_python(code)
            assert not r.ok and "connected" not in r.stdout
            try:
                server.accept()
                raise AssertionError("the sandbox reached the listener")
            except socket.timeout:
                pass
    finally:
        server.close()


def _count_processes() -> int:
    return sum(1 for d in os.listdir("/proc") if d.isdigit())


def test_fork_bomb_and_process_creation_fail_and_leave_no_processes() -> None:
    before = _count_processes()
    attempts = [
        "import os\nwhile True:\n    os.fork()",
        "import posix\nwhile True:\n    posix.fork()",
        "import subprocess\nsubprocess.run(['echo', 'hi'])",
        "import os\nos.system('echo hi')",
        "import ctypes\nctypes.CDLL(None).fork()",
    ]
    for r in run_many(attempts, workers=2, timeout_s=3.0):
        assert not r.ok and not r.timed_out and "hi" not in r.stdout
    time.sleep(0.2)
    assert _count_processes() <= before + 2  # other jobs on the machine may start a process or two
    assert run_python("print('still fine')").stdout == "still fine\n"


def test_writes_outside_the_sandbox_directory_fail_and_inside_work(tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "escaped.txt"
    r = run_python(f"open({str(target)!r}, 'w').write('x')")
    assert not r.ok and not target.exists()
    r = run_python("open('a.txt', 'w').write('x')\nprint(open('a.txt').read())")
    assert r.ok and r.stdout == "x\n"


def test_the_program_works_in_its_own_directory_and_nothing_is_left_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the host-side directory goes to a temp dir of this test's own (other jobs on the machine
    # make and remove theirs in /tmp meanwhile); it must be gone afterwards
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    r = run_python("import os, tempfile\nprint(os.getcwd())\nprint(tempfile.mkstemp()[1].startswith('/tmp/'))",
                   timeout_s=10.0)
    assert r.ok and r.stdout == "/sandbox\nTrue\n", r
    assert list(tmp_path.iterdir()) == []


def test_endless_output_is_capped() -> None:
    r = run_python("while True:\n    print('x' * 1000)", timeout_s=5.0)
    assert not r.ok and len(r.stdout) <= 64 * 1024


def test_installed_packages_import_and_exit_works() -> None:
    """The program's Python starts without site (-S): site-packages are on the path all the same,
    and ``exit(n)`` ends it with status n."""
    r = run_python("import sys\nprint(any(p.endswith('-packages') for p in sys.path))\nexit(3)", timeout_s=10.0)
    assert r.stdout == "True\n" and r.returncode == 3 and r.stderr == ""


def test_run_many_keeps_order() -> None:
    results = run_many([f"print({i})" for i in range(4)], workers=2)
    assert [r.stdout for r in results] == ["0\n", "1\n", "2\n", "3\n"]


def test_isolation_is_available_here_and_cached() -> None:
    """This machine (and CI, the same kind) runs as root with namespaces: the real root mode."""
    found = sandbox.isolation()
    assert found == Isolation(True, user_ns=os.geteuid() != 0)
    assert sandbox.isolation() is found


def test_readable_paths_hold_python_and_no_home_or_tmp() -> None:
    paths = sandbox.readable_paths()
    assert "/usr" in paths and any(os.path.realpath(p) == os.path.realpath(sys.base_prefix) for p in paths)
    assert not {"/", "/tmp", "/home", "/root", "/etc", "/proc", "/var"} & set(paths)


UNAVAILABLE = Isolation(False, reason="simulated: no namespaces")


def test_unavailable_isolation_refuses_to_run(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sandbox, "isolation", lambda: UNAVAILABLE)
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    marker = tmp_path / "ran"
    for call in (lambda: run_python(f"open({str(marker)!r}, 'w')"),
                 lambda: run_many([f"open({str(marker)!r}, 'w')"] * 2)):
        with pytest.raises(SandboxUnavailableError, match="simulated: no namespaces.*TABOM_UNSAFE_UNSANDBOXED=1"):
            call()
    assert not marker.exists()
    assert issubclass(SandboxUnavailableError, ValueError)  # the CLI prints it as `error: ...`, exit 2


def test_unsafe_opt_in_runs_unconfined_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "isolation", lambda: UNAVAILABLE)
    monkeypatch.setattr(sandbox, "_warned", [])
    monkeypatch.setenv(sandbox.UNSAFE_ENV, "1")
    with pytest.warns(RuntimeWarning, match="WITHOUT isolation"):
        r = run_python("import os\nprint(6 * 7, os.getuid())", timeout_s=10.0)
    assert r.ok and r.stdout == f"42 {os.getuid()}\n"  # the caller's own user: no isolation
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per process, not per program
        assert run_python("while True:\n    pass", timeout_s=1.0).timed_out  # the limits still apply
    assert not run_python("import os\nos.fork()").ok  # and the guard


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping CAP_SYS_ADMIN to test needs root")
def test_root_without_cap_sys_admin_is_refused_for_real() -> None:
    """Not simulated: tabom as root without CAP_SYS_ADMIN (a default Docker container) finds no
    isolation, does not fall back to a user namespace, and refuses; the opt-in runs unconfined."""
    import subprocess  # noqa: PLC0415

    check = ("from tabom.tasks import sandbox\nprint(sandbox.isolation())\n"
             "try:\n    sandbox.run_python('print(1)')\nexcept ValueError as exc:\n    print('refused:', exc)\n"
             "else:\n    print('RAN')\n")
    cmd = ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--", sys.executable, "-c", check]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    assert "Isolation(available=False" in out and "unshare: Operation not permitted" in out, out
    assert "refused: sandbox: programs cannot be isolated" in out and "RAN" not in out
    env = {**os.environ, sandbox.UNSAFE_ENV: "1"}
    done = subprocess.run(cmd[:-1] + ["from tabom.tasks import sandbox\nprint(sandbox.run_python('print(6*7)').stdout)"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.stdout == "42\n\n" and "WITHOUT isolation" in done.stderr, (done.stdout, done.stderr)


def test_a_broken_launcher_makes_isolation_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The probe runs the real launcher: when it cannot set up, detection says so and why."""
    broken = tmp_path / "launch.py"
    broken.write_text("import sys\nsys.stderr.write('no namespaces for you')\nsys.exit(3)\n")
    monkeypatch.setattr(sandbox, "_LAUNCHER", str(broken))
    monkeypatch.setattr(sandbox, "_isolation_cache", [])
    found = sandbox.isolation()
    assert not found.available and "no namespaces for you" in found.reason


def test_a_setup_failure_is_an_error_not_a_failed_program(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the Python installation in the new root the exec fails: reported, not scored."""
    monkeypatch.setattr(sandbox, "readable_paths", lambda: ())
    with pytest.raises(SandboxUnavailableError, match="setting up the isolation failed: FileNotFoundError"):
        run_python("print(1)")
