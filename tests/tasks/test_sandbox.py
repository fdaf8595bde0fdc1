"""The sandbox contains infinite loops, memory hogs, network use, forks and stray writes."""

import os
import socket
import time

from tabom.tasks.sandbox import net_isolation_prefix, run_many, run_python


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


def test_temporary_directory_is_removed() -> None:
    r = run_python("import os\nprint(os.getcwd())")
    assert r.ok and not os.path.exists(r.stdout.strip())


def test_endless_output_is_capped() -> None:
    r = run_python("while True:\n    print('x' * 1000)", timeout_s=5.0)
    assert not r.ok and len(r.stdout) <= 64 * 1024


def test_run_many_keeps_order() -> None:
    results = run_many([f"print({i})" for i in range(4)], workers=2)
    assert [r.stdout for r in results] == ["0\n", "1\n", "2\n", "3\n"]


def test_net_isolation_probe_returns_a_prefix_or_nothing() -> None:
    prefix = net_isolation_prefix()
    assert prefix == () or (prefix[0].endswith("unshare") and "--net" in prefix)
