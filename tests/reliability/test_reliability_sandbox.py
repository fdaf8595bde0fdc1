"""Escapes from the code sandbox, each run and shown to fail (docs/evaluation.md, 'The code sandbox').

Every escape runs three ways: through ``run_python`` as callers use it (namespaces + rlimits +
audit-hook guard), and through the launcher with the defence in depth switched off (no audit hook,
64 processes allowed: ``guard=False``), as real root mode (the program is uid 65534) and in a user
namespace (the mode of a non-root caller). The bare runs show that the namespaces alone contain the
program: there fork and exec work, and the program is still boxed in.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tabom.tasks import sandbox
from tabom.tasks.sandbox import SandboxResult, run_python

Runner = Callable[..., SandboxResult]


def _bare(user_ns: bool) -> Runner:
    def run(code: str, timeout_s: float = 10.0) -> SandboxResult:
        return sandbox._launch(code, "", timeout_s, 512, user_ns=user_ns, guard=False)
    return run


RUNNERS = {"guarded": lambda code, timeout_s=10.0: run_python(code, timeout_s=timeout_s),
           "bare-root": _bare(False), "bare-userns": _bare(True)}


@pytest.fixture(params=sorted(RUNNERS))
def runner(request: pytest.FixtureRequest) -> Runner:
    assert sandbox.isolation().available, sandbox.isolation().reason
    return RUNNERS[request.param]


def _processes_with(token: str) -> list[int]:
    """Host pids whose command line holds ``token`` (this process's own never does)."""
    found = []
    for pid in (d for d in os.listdir("/proc") if d.isdigit()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if token.encode() in fh.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def test_fork_exec_of_a_shell_cannot_write_outside(runner: Runner, tmp_path: Path) -> None:
    """The issue's first escape: ``_posixsubprocess.fork_exec`` of /bin/sh (no audit event)."""
    marker = tmp_path / "pwned"
    code = f"""
import _posixsubprocess, os
r, w = os.pipe()
cmd = [b"/bin/sh", b"-c", b"echo uid=$(id -u); echo pwned > {marker}; echo pwned > /usr/pwned"]
pid = _posixsubprocess.fork_exec(cmd, [b"/bin/sh"], True, (w,), None, None, -1, -1, -1, -1, -1, -1,
                                 r, w, True, True, -1, None, None, None, -1, None, False)
print("forked", flush=True)
os.waitpid(pid, 0)
"""
    r = runner(code)
    assert not marker.exists() and not os.path.exists("/usr/pwned")
    assert "uid=0" not in r.stdout or runner is RUNNERS["bare-userns"]  # root of its own namespace only
    if runner is RUNNERS["bare-root"]:
        assert "forked" in r.stdout and "uid=65534" in r.stdout  # the shell did run, as nobody
    if runner is RUNNERS["guarded"]:
        assert not r.ok and "forked" not in r.stdout  # RLIMIT_NPROC=0 refuses the fork


@pytest.mark.parametrize("how", ["exit", "timeout"])
def test_no_process_outlives_the_run(runner: Runner, how: str) -> None:
    """A new-session child and a double-fork daemon die with the run, whether it exits or times out."""
    token = f"tabom-escape-{os.getpid()}-{time.monotonic_ns()}"
    code = f"""
import os, subprocess, sys, time
sleeper = [sys.executable, "-c", "import time; time.sleep(30)  # {token}"]
subprocess.Popen(sleeper, start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, sleeper)
    os._exit(0)
time.sleep(0.5)
print("spawned", flush=True)
{"while True: pass" if how == "timeout" else ""}
"""
    r = runner(code, timeout_s=3.0 if how == "timeout" else 10.0)
    assert _processes_with(token) == []  # none right after the call returns: the namespace is gone
    if runner is not RUNNERS["guarded"]:
        assert "spawned" in r.stdout
        assert r.timed_out == (how == "timeout")
    else:
        assert not r.ok and "spawned" not in r.stdout
    time.sleep(0.3)
    assert _processes_with(token) == []


@pytest.mark.parametrize("user_ns", [False, True])
def test_killing_the_launcher_kills_the_program(user_ns: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's backstop (or Ctrl-C) kills only the launcher: the program, which changed user,
    follows through its re-armed parent-death signal, and its whole PID namespace with it."""
    token = f"tabom-orphan-{os.getpid()}-{time.monotonic_ns()}"
    monkeypatch.setattr(sandbox, "_BACKSTOP_S", -27.0)  # the caller gives up after 3 s of 30
    inner = f"import os, time\nif os.fork() == 0:\n    time.sleep(60)\nwhile True: pass  # {token}"
    code = f"import os, sys\nos.execv(sys.executable, [sys.executable, '-c', {inner!r}])"  # token in the cmdline
    t0 = time.monotonic()
    r = sandbox._launch(code, "", 30.0, 512, user_ns=user_ns, guard=False)
    assert r.timed_out and time.monotonic() - t0 < 20
    deadline = time.monotonic() + 5
    while _processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(token) == []


def test_disabling_the_audit_hook_does_not_open_the_box(tmp_path: Path) -> None:
    """The issue's second escape: the guard's state edited through ``sys.modules['__main__']``."""
    marker = tmp_path / "pwned"
    code = f"""
import sys, posix
g = sys.modules["__main__"].__dict__
g["_PROC"].clear(); g["_PATHS"].clear(); g["_inside"] = lambda p: True
open("/tmp/hook-is-off", "w").write("x")
print("hook off", flush=True)
for attempt in ("open", "system", "fork"):
    try:
        if attempt == "open":
            open({str(marker)!r}, "w").write("pwned")
        elif attempt == "system":
            print("system", posix.system("echo pwned > {marker}; echo pwned > /usr/pwned"), flush=True)
        else:
            print("fork", posix.fork(), flush=True)
    except OSError as exc:
        print(attempt, "refused:", exc, flush=True)
"""
    r = run_python(code, timeout_s=10.0)
    assert "hook off" in r.stdout  # the trick worked: the guard no longer refuses anything
    assert "open refused" in r.stdout and "fork refused" in r.stdout  # no such dir; RLIMIT_NPROC
    assert not marker.exists() and not os.path.exists("/usr/pwned")


def test_writes_outside_fail_by_every_route(runner: Runner, tmp_path: Path) -> None:
    """chdir + relative write, ``dir_fd``, mkfifo, rename/link/symlink and mkdir outside its dirs."""
    code = f"""
import os
attempts = {{
    "chdir-host": lambda: (os.chdir({str(tmp_path)!r}), open("f", "w")),
    "chdir-usr": lambda: (os.chdir("/usr"), open("f", "w")),
    "chdir-root": lambda: (os.chdir("/"), open("f", "w")),
    "dir_fd-host": lambda: os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=os.open({str(tmp_path)!r}, os.O_RDONLY)),
    "dir_fd-usr": lambda: os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=os.open("/usr/lib", os.O_RDONLY)),
    "mkfifo-host": lambda: os.mkfifo({str(tmp_path / "fifo")!r}),
    "mkfifo-usr": lambda: os.mkfifo("/usr/fifo"),
    "mkdir-etc": lambda: os.mkdir("/etc/x"),
    "append-passwd": lambda: open("/etc/passwd", "a"),
    "symlink-bin": lambda: os.symlink("/sandbox", "/bin/x"),
    "chmod-python": lambda: os.chmod({os.path.realpath(sys.executable)!r}, 0o777),
}}
for name, attempt in attempts.items():
    try:
        attempt()
        print(name, "WROTE", flush=True)
    except OSError as exc:
        print(name, "refused", type(exc).__name__, flush=True)
    finally:
        os.chdir("/sandbox")
"""
    r = runner(code)
    assert "WROTE" not in r.stdout, r.stdout
    assert r.stdout.count("refused") == 11, (r.stdout, r.stderr)
    assert list(tmp_path.iterdir()) == []
    for path in ("/usr/f", "/f", "/usr/lib/f", "/usr/fifo", "/etc/x", "/bin/x"):
        assert not os.path.lexists(path), path


def test_the_caller_survives_signals_and_pidfds(runner: Runner) -> None:
    """``pidfd_send_signal(pidfd_open(getppid()))``, ``kill(getppid())`` and ``kill(-1)``: pytest lives on."""
    code = """
import os, signal
print("ppid", os.getppid(), flush=True)
for name, attempt in (("pidfd", lambda: signal.pidfd_send_signal(os.pidfd_open(os.getppid()), signal.SIGKILL)),
                      ("kill-ppid", lambda: os.kill(os.getppid(), signal.SIGKILL)),
                      ("kill-all", lambda: os.kill(-1, signal.SIGKILL))):
    try:
        attempt()
        print(name, "sent", flush=True)
    except OSError as exc:
        print(name, "refused", exc, flush=True)
"""
    r = runner(code)
    assert os.getppid() > 1 and os.kill(os.getpid(), 0) is None  # still here, parent unchanged
    if runner is not RUNNERS["guarded"]:
        assert "ppid 0" in r.stdout  # PID 1 of its own namespace: no parent it can name


def test_the_callers_environment_and_files_are_invisible(runner: Runner, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """/proc/*/environ and cmdline, the program's own environment, a 0600 secret file of the caller."""
    secret = f"s3cret-{time.monotonic_ns()}"
    monkeypatch.setenv("HF_TOKEN", secret)
    secret_file = tmp_path / "token.txt"
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    code = f"""
import os
for pid in [d for d in os.listdir("/proc") if d.isdigit()] + ["self", "1", str(os.getppid())]:
    for name in ("environ", "cmdline"):
        try:
            print(pid, name, open(f"/proc/{{pid}}/{{name}}", "rb").read(), flush=True)
        except OSError as exc:
            print(pid, name, "refused", exc, flush=True)
print("env", dict(os.environ), flush=True)
for path in ({str(secret_file)!r}, "/root/.bash_history", "/proc/1/root{secret_file}"):
    try:
        print(path, open(path).read(), flush=True)
    except OSError as exc:
        print(path, "refused", type(exc).__name__, flush=True)
print("pids", sorted(d for d in os.listdir("/proc") if d.isdigit()))
print("top", sorted(os.listdir("/")))
"""
    r = runner(code)
    assert secret not in r.stdout and secret not in r.stderr
    assert "HF_TOKEN" not in r.stdout and "pids ['1']" in r.stdout
    top = eval(r.stdout.split("top ", 1)[1])  # noqa: S307  (a list literal the program printed)
    expected = {"bin", "dev", "etc", "lib", "lib64", "proc", "sandbox", "sbin", "tmp", "usr"}
    assert expected <= set(top) and "home" not in top and "var" not in top


@pytest.mark.parametrize("mode", ["guarded", "bare-root"])  # (as root, a user namespace maps to root itself)
def test_a_0600_file_in_a_visible_directory_is_unreadable(mode: str) -> None:
    """The program runs as nobody: the owner-only files of the visible paths stay closed to it."""
    secret = f"s3cret-{time.monotonic_ns()}"
    path = os.path.join(sys.prefix, f".tabom-test-secret-{os.getpid()}")  # the venv is bound read-only
    with open(path, "w") as fh:
        fh.write(secret)
    os.chmod(path, 0o600)
    try:
        r = RUNNERS[mode](f"import os\nprint(os.path.exists({path!r}))\nprint(open({path!r}).read())")
    finally:
        os.remove(path)
    assert r.stdout.startswith("True\n") and "PermissionError" in r.stderr and secret not in r.stdout


def test_the_network_is_unreachable(runner: Runner) -> None:
    """A listener of this process on 127.0.0.1 gets no connection (sockets made through _socket)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    code = f"""
import _socket
try:
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(("127.0.0.1", {port}))
    print("connected")
except OSError as exc:
    print("refused", exc)
"""
    try:
        r = runner(code)
        assert "connected" not in r.stdout
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()


@pytest.mark.parametrize("mode", ["bare-root", "bare-userns"])  # with the guard, ctypes is refused earlier
def test_privileges_are_gone(mode: str) -> None:
    """No capability, no_new_privs, nobody when root; mount, setuid and chroot are refused."""
    code = """
import ctypes, os
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
print({k: status[k].strip() for k in ("Uid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")})
libc = ctypes.CDLL(None, use_errno=True)
print("remount", libc.mount(None, b"/", None, 32 | 4096, None), ctypes.get_errno())
for name, attempt in (("setuid", lambda: os.setuid(1 if os.getuid() == 0 else 0)), ("chroot", lambda: os.chroot("/tmp"))):
    try:
        attempt()
        print(name, "DONE")
    except OSError as exc:
        print(name, "refused")
"""
    r = RUNNERS[mode](code)
    status = eval(r.stdout.splitlines()[0])  # noqa: S307  (a dict literal the program printed)
    assert {status[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")} == {"0000000000000000"}
    assert status["NoNewPrivs"] == "1"
    assert status["Uid"].split()[0] == ("0" if mode == "bare-userns" else "65534")
    assert "remount -1 1" in r.stdout  # EPERM
    assert "DONE" not in r.stdout


def test_the_scratch_space_is_bounded(runner: Runner) -> None:
    """Filling /sandbox stops at its tmpfs size (64 MiB), not at the host's disk."""
    code = """
import os
n = 0
try:
    for i in range(200):
        with open(f"f{i}", "wb") as fh:
            fh.write(b"x" * 1000000)
        n += 1
except OSError as exc:
    print("stopped", type(exc).__name__)
print("files", n)
"""
    r = runner(code)
    n = int(r.stdout.split("files ")[1])
    assert "stopped" in r.stdout and n * 1000000 <= sandbox.DISK_MB * 2**20, r.stdout


NON_ROOT_CHECK = """
import os, sys
sys.path.insert(0, {repo!r})
from tabom.tasks import sandbox
secret = os.path.join({secrets!r}, "secret.txt")
with open(secret, "w") as fh:
    fh.write("s3cret-of-the-caller")
os.chmod(secret, 0o600)
found = sandbox.isolation()
print("isolation", found.available, found.user_ns, found.reason)
code = (
    "import os\\n"
    "print('uid', os.getuid(), 'pids', [d for d in os.listdir('/proc') if d.isdigit()])\\n"
    "for p, mode in ((" + repr(secret) + ", 'r'), ('/usr/x', 'w'), (" + repr(os.path.join({secrets!r}, "x")) + ", 'w')):\\n"
    "    try:\\n"
    "        f = open(p, mode)\\n"
    "        print(p, f.read() if mode == 'r' else 'WROTE')\\n"
    "    except OSError as exc:\\n"
    "        print(p, 'refused', type(exc).__name__)\\n"
)
r = sandbox._launch(code, "", 10.0, 512, user_ns=True, guard=False)
print(r.stdout, r.stderr)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user to test needs root")
def test_a_non_root_caller_gets_a_user_namespace_and_the_same_box() -> None:
    """tabom run by user 65534: detection picks the user namespace; the caller's files stay out of reach.

    The Python of this environment lives under /root (mode 0700), so the check runs in a private
    mount namespace where that installation is bound at a path user 65534 can reach.
    """
    import subprocess  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    work, secrets = tempfile.mkdtemp(prefix="tabom_nonroot_"), tempfile.mkdtemp(prefix="tabom_nonroot_")
    try:
        for path in (work, secrets):
            os.chmod(path, 0o777)
        os.mkdir(os.path.join(work, "py"))
        script = os.path.join(work, "check.py")
        with open(script, "w") as fh:
            fh.write(NON_ROOT_CHECK.format(repo=str(Path(__file__).resolve().parents[2]), secrets=secrets))
        os.chmod(script, 0o644)
        python = os.path.join(work, "py", "bin", os.path.basename(os.path.realpath(sys.executable)))
        inner = (f"mount --bind {sys.base_prefix} {work}/py && exec setpriv --reuid=65534 --regid=65534 "
                 f"--clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- "
                 f"env -i PATH=/usr/bin:/bin {python} -I {script}")
        out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", inner],
                             capture_output=True, text=True, timeout=120)
        assert "isolation True True" in out.stdout, (out.stdout, out.stderr)
        assert "uid 0 pids ['1']" in out.stdout  # root of its own user namespace only; alone in its PID namespace
        assert out.stdout.count("refused") == 3 and "s3cret" not in out.stdout and "WROTE" not in out.stdout, out.stdout
        assert sorted(os.listdir(secrets)) == ["secret.txt"]
    finally:
        subprocess.run(["rm", "-rf", work, secrets], check=False)
