"""Escapes from the code sandbox, each run and shown to fail (docs/evaluation.md, 'The code sandbox').

Every escape runs three ways:

- ``guarded``: ``run_python`` as callers use it, tabom as root (namespaces, user nobody, rlimits,
  audit-hook guard);
- ``bare``: the launcher with the defence in depth switched off (no audit hook, 64 processes
  allowed: ``guard=False``), tabom as root: there fork and exec work, and the program is still boxed
  in, so the namespaces alone hold;
- ``non-root``: the same bare launcher called by user 65534 (a helper process started through
  ``unshare --mount`` and ``setpriv``), so the user-namespace mode of a non-root caller, with
  targets that user could reach if the program were not contained.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tabom.tasks import sandbox
from tabom.tasks.sandbox import SandboxResult, run_python

NOBODY = 65534
REPO = str(Path(__file__).resolve().parents[2])


@dataclass
class Runner:
    """One way to run a program; ``caller_uid`` is who calls the sandbox, ``uid_inside`` who runs it."""

    name: str
    caller_uid: int
    uid_inside: int
    launch: Callable[[str, float, dict[str, str], float | None], SandboxResult]

    def __call__(self, code: str, timeout_s: float = 10.0, env: dict[str, str] | None = None,
                 backstop_s: float | None = None) -> SandboxResult:
        return self.launch(code, timeout_s, env or {}, backstop_s)


def _in_this_process(guard: bool) -> Callable[[str, float, dict[str, str], float | None], SandboxResult]:
    def launch(code: str, timeout_s: float, env: dict[str, str], backstop_s: float | None) -> SandboxResult:
        saved_env, saved_backstop = dict(os.environ), sandbox._BACKSTOP_S
        os.environ.update(env)
        sandbox._BACKSTOP_S = saved_backstop if backstop_s is None else backstop_s
        try:
            if guard:
                return run_python(code, timeout_s=timeout_s)
            return sandbox._launch(code, "", timeout_s, 512, user_ns=False, guard=False)
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
            sandbox._BACKSTOP_S = saved_backstop
    return launch


SERVER = """
import json, os, sys
sys.path.insert(0, {repo!r})
from tabom.tasks import sandbox
found = sandbox.isolation()
print(json.dumps([found.available, found.user_ns, found.reason, os.getuid()]), flush=True)
backstop_s = sandbox._BACKSTOP_S
for line in sys.stdin:
    req = json.loads(line)
    os.environ.update(req["env"])
    sandbox._BACKSTOP_S = backstop_s if req["backstop_s"] is None else req["backstop_s"]
    try:
        r = sandbox._launch(req["code"], "", req["timeout_s"], 512, user_ns=True, guard=False)
        print(json.dumps([r.ok, r.returncode, r.stdout, r.stderr, r.timed_out]), flush=True)
    except Exception as exc:
        print(json.dumps(repr(exc)), flush=True)
"""


@pytest.fixture(scope="module")
def non_root() -> Iterator[Runner]:
    """A process of user 65534 that runs programs through the sandbox on request (JSON lines).

    The Python of this environment lives under /root (mode 0700): the helper runs in a private
    mount namespace where that installation is bound at a path user 65534 can reach.
    """
    work = tempfile.mkdtemp(prefix="tabom_nonroot_")
    os.chmod(work, 0o755)
    os.mkdir(os.path.join(work, "py"))
    script = os.path.join(work, "server.py")
    with open(script, "w") as fh:
        fh.write(SERVER.format(repo=REPO))
    os.chmod(script, 0o644)
    python = os.path.join(work, "py", "bin", os.path.basename(os.path.realpath(sys.executable)))
    inner = (f"mount --bind {sys.base_prefix} {work}/py && exec setpriv --reuid={NOBODY} --regid={NOBODY} "
             f"--clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- "
             f"env -i PATH=/usr/bin:/bin {python} -I {script}")
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", inner],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert json.loads(proc.stdout.readline()) == [True, True, "", NOBODY]  # a user namespace was chosen

        def launch(code: str, timeout_s: float, env: dict[str, str], backstop_s: float | None) -> SandboxResult:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps({"code": code, "timeout_s": timeout_s, "env": env,
                                         "backstop_s": backstop_s}) + "\n")
            proc.stdin.flush()
            answer = json.loads(proc.stdout.readline())  # an answer: the caller is alive
            assert isinstance(answer, list), answer
            return SandboxResult(*answer)

        yield Runner("non-root", NOBODY, 0, launch)
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        subprocess.run(["rm", "-rf", work], check=False)


RUNNER_NAMES = ["guarded", "bare", "non-root"]


@pytest.fixture(params=RUNNER_NAMES)
def runner(request: pytest.FixtureRequest) -> Runner:
    if os.geteuid() != 0:
        pytest.skip("these tests run tabom as root (and switch to user 65534 for the non-root case)")
    assert sandbox.isolation().available, sandbox.isolation().reason
    if request.param == "non-root":
        return request.getfixturevalue("non_root")
    return Runner(request.param, 0, NOBODY, _in_this_process(guard=request.param == "guarded"))


@pytest.fixture()
def outside(runner: Runner) -> Iterator[Path]:
    """A directory outside the sandbox that the caller can write to (world-writable, in /tmp)."""
    path = tempfile.mkdtemp(prefix="tabom_outside_")
    os.chmod(path, 0o777)
    yield Path(path)
    subprocess.run(["rm", "-rf", path], check=False)


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


def test_fork_exec_of_a_shell_cannot_write_outside(runner: Runner, outside: Path) -> None:
    """The issue's first escape: ``_posixsubprocess.fork_exec`` of /bin/sh (no audit event)."""
    marker = outside / "pwned"
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
    if runner.name == "guarded":
        assert not r.ok and "forked" not in r.stdout  # RLIMIT_NPROC=0 refuses the fork
    else:
        assert "forked" in r.stdout and f"uid={runner.uid_inside}" in r.stdout  # the shell did run


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
    if runner.name == "guarded":
        assert not r.ok and "spawned" not in r.stdout
    else:
        assert "spawned" in r.stdout and r.timed_out == (how == "timeout")
    time.sleep(0.3)
    assert _processes_with(token) == []


@pytest.mark.parametrize("name", ["bare", "non-root"])  # with the guard, os.execv is refused earlier
def test_killing_the_launcher_kills_the_program(name: str, request: pytest.FixtureRequest) -> None:
    """The caller's backstop (or Ctrl-C) kills only the launcher: the program (which, as root, changed
    user) follows through its parent-death signal, and its whole PID namespace with it."""
    run = request.getfixturevalue("non_root") if name == "non-root" else Runner(
        "bare", 0, NOBODY, _in_this_process(guard=False))
    token = f"tabom-orphan-{os.getpid()}-{time.monotonic_ns()}"
    inner = f"import os, time\nif os.fork() == 0:\n    time.sleep(60)\nwhile True: pass  # {token}"
    # out of the launcher's process group (which the caller kills; in a user namespace it already
    # leads its own session), and the token in the cmdline
    code = (f"import os, sys\nif os.getsid(0) != os.getpid():\n    os.setpgid(0, 0)\n"
            f"os.execv(sys.executable, [sys.executable, '-c', {inner!r}])")
    t0 = time.monotonic()
    r = run(code, timeout_s=30.0, backstop_s=-27.0)  # the caller gives up after 3 s of 30
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


def test_writes_outside_fail_by_every_route(runner: Runner, outside: Path) -> None:
    """chdir + relative write, ``dir_fd``, mkfifo, mkdir, append, symlink and chmod outside its dirs."""
    code = f"""
import os
attempts = {{
    "chdir-outside": lambda: (os.chdir({str(outside)!r}), open("f", "w")),
    "chdir-usr": lambda: (os.chdir("/usr"), open("f", "w")),
    "chdir-root": lambda: (os.chdir("/"), open("f", "w")),
    "dir_fd-outside": lambda: os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=os.open({str(outside)!r}, os.O_RDONLY)),
    "dir_fd-usr": lambda: os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=os.open("/usr/lib", os.O_RDONLY)),
    "mkfifo-outside": lambda: os.mkfifo({str(outside / "fifo")!r}),
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
    assert list(outside.iterdir()) == []
    for path in ("/usr/f", "/f", "/usr/lib/f", "/usr/fifo", "/etc/x", "/bin/x"):
        assert not os.path.lexists(path), path


def test_the_caller_survives_signals_and_pidfds(runner: Runner) -> None:
    """``pidfd_send_signal(pidfd_open(getppid()))``, ``kill(getppid())`` and ``kill(-1)``: the caller
    lives on (pytest, or the non-root helper, which then answers)."""
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
    if runner.name != "guarded":
        assert "ppid 0" in r.stdout  # PID 1 of its own namespace: no parent it can name
    assert runner("print('alive')").stdout == "alive\n"


def test_stopping_its_process_group_does_not_stop_the_timeout(runner: Runner) -> None:
    """``kill(0, SIGSTOP)`` reaches no launcher (root's is out of reach, a user namespace's is in
    another session): the program is still killed at its timeout, not at the caller's backstop."""
    code = "import os, signal\ntry:\n    os.kill(0, signal.SIGSTOP)\nexcept OSError:\n    pass\nwhile True:\n    pass"
    t0 = time.monotonic()
    r = runner(code, timeout_s=2.0)
    assert r.timed_out and time.monotonic() - t0 < 10  # the backstop would be 32 s


def test_the_callers_environment_and_files_are_invisible(runner: Runner, outside: Path) -> None:
    """/proc/*/environ and cmdline, the program's own environment, a 0600 secret file of the caller."""
    secret = f"s3cret-{time.monotonic_ns()}"
    secret_file = outside / "token.txt"
    secret_file.write_text(secret)
    os.chown(secret_file, runner.caller_uid, runner.caller_uid)
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
    r = runner(code, env={"HF_TOKEN": secret})
    assert secret not in r.stdout and secret not in r.stderr
    assert "HF_TOKEN" not in r.stdout and "pids ['1']" in r.stdout
    top = eval(r.stdout.split("top ", 1)[1])  # noqa: S307  (a list literal the program printed)
    expected = {"bin", "dev", "etc", "lib", "lib64", "proc", "sandbox", "sbin", "tmp", "usr"}
    assert expected <= set(top) and "home" not in top and "var" not in top


@pytest.mark.parametrize("name", ["guarded", "bare"])  # (the non-root caller could not read it either)
def test_a_0600_file_in_a_visible_directory_is_unreadable(name: str) -> None:
    """Run by root, the program is nobody: the owner-only files of the visible paths stay closed."""
    secret = f"s3cret-{time.monotonic_ns()}"
    path = os.path.join(sys.prefix, f".tabom-test-secret-{os.getpid()}")  # the venv is bound read-only
    with open(path, "w") as fh:
        fh.write(secret)
    os.chmod(path, 0o600)
    try:
        r = Runner(name, 0, NOBODY, _in_this_process(guard=name == "guarded"))(
            f"import os\nprint(os.path.exists({path!r}))\nprint(open({path!r}).read())")
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


def test_abstract_unix_sockets_of_the_host_are_unreachable(runner: Runner) -> None:
    """An abstract UNIX socket this process listens on (the kind no file permission guards) is
    out of reach: abstract names belong to the network namespace."""
    name = f"tabom-test-{os.getpid()}-{time.monotonic_ns()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("\0" + name)
    server.listen(1)
    server.settimeout(0.2)
    code = f"""
import _socket
try:
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    s.connect("\\0{name}")
    print("connected")
except OSError as exc:
    print("refused", exc)
"""
    try:
        r = runner(code)
        assert "connected" not in r.stdout and ("refused" in r.stdout or runner.name == "guarded"), r
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()


def test_privileges_are_gone(runner: Runner) -> None:
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
    r = runner(code)
    if runner.name == "guarded":  # the guard refuses ctypes before the kernel is asked
        assert "sandbox: ctypes.dlopen is not allowed" in r.stderr, r.stderr
        r = Runner("bare", 0, NOBODY, _in_this_process(guard=False))(code)
    status = eval(r.stdout.splitlines()[0])  # noqa: S307  (a dict literal the program printed)
    assert {status[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")} == {"0000000000000000"}
    assert status["NoNewPrivs"] == "1"
    assert status["Uid"].split()[0] == str(runner.uid_inside)
    assert "remount -1 1" in r.stdout  # EPERM
    assert "DONE" not in r.stdout and r.stdout.count("refused") == 2


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


def test_a_nested_user_namespace_unlocks_nothing(runner: Runner, outside: Path) -> None:
    """The program makes its own user + mount namespaces (full capabilities there): the read-only
    mounts it inherited stay locked, the old root stays gone, so it still writes nowhere."""
    code = f"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
uid, gid = os.getuid(), os.getgid()
print("unshare", libc.unshare(0x10000000 | 0x00020000), ctypes.get_errno(), flush=True)
for name, text in (("setgroups", "deny"), ("uid_map", f"0 {{uid}} 1"), ("gid_map", f"0 {{gid}} 1")):
    try:
        open(f"/proc/self/{{name}}", "w").write(text)
    except OSError as exc:
        print(name, "refused", exc)
print("remount-rw", libc.mount(None, b"/usr", None, 32 | 4096, None), ctypes.get_errno(), flush=True)
print("umount-usr", libc.umount2(b"/usr", 2), ctypes.get_errno(), flush=True)
print("mount-host", libc.mount(b"/", b"/tmp", None, 4096 | 16384, None), ctypes.get_errno(), flush=True)
for path in ("/usr/x", {str(outside / "x")!r}):
    try:
        open(path, "w")
        print(path, "WROTE")
    except OSError as exc:
        print(path, "refused", type(exc).__name__)
print("tmp", sorted(os.listdir("/tmp")))
print("root", sorted(os.listdir("/")))
"""
    r = runner(code)
    if runner.name == "guarded":  # the guard refuses ctypes first
        assert "sandbox: ctypes.dlopen is not allowed" in r.stderr and not list(outside.iterdir())
        return
    assert "unshare 0 0" in r.stdout, (r.stdout, r.stderr)  # allowed: it gains nothing from it
    assert "remount-rw -1" in r.stdout and "umount-usr -1" in r.stdout
    assert "WROTE" not in r.stdout and list(outside.iterdir()) == []
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert set(eval(lines["tmp"])) <= set(eval(lines["root"]))  # noqa: S307  ("/" bound on /tmp: its own root)
    assert "home" not in lines["tmp"] and "var" not in lines["tmp"]
