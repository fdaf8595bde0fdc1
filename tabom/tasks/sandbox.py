"""Run untrusted Python (model outputs) in an isolated, limited process.

``run_python(code)`` runs ``code`` as ``/sandbox/main.py`` inside Linux namespaces that
:mod:`tabom.tasks.sandbox_launch` sets up (kernel features only, no package to install: the system
calls go through ctypes). What the program gets:

- its own PID namespace (it is PID 1; no other process is visible, ``/proc`` is a fresh one for
  that namespace), and every process it starts dies with it at exit or at the timeout;
- its own mount namespace: a read-only root holding only the system directories, a few ``/etc``
  files, the Python installation and the device nodes of :func:`readable_paths`; a private tmpfs
  ``/sandbox`` (its working directory) and ``/tmp``, 64 MiB each; the old root detached;
- its own network (no interface up, not even loopback), IPC and UTS namespaces;
- no capabilities, ``no_new_privs``, and user 65534 (nobody) when tabom runs as root (which
  needs ``CAP_SYS_ADMIN``); as another user, root of a new user namespace mapped to that user
  alone (capabilities dropped all the same);
- a minimal environment (``PATH``, ``LANG``, ``HOME=/sandbox``, ``TMPDIR=/tmp``, thread counts 1);
- ``python -I -S -B`` with the site-packages directories on ``sys.path`` (no ``.pth`` hooks);
- resource limits (address space ``memory_mb``, CPU seconds, 1 MiB per file, which also caps
  stdout/stderr, no new processes or threads, no core files) and an audit-hook guard refusing process
  creation, sockets, ctypes and writes outside its directory: defence in depth only, the
  boundary above does not rely on them.

Whether the namespaces work is tested once per process (:func:`isolation`). Where they do not,
``run_python``/``run_many`` raise :class:`SandboxUnavailableError` (a ``ValueError``: the CLI
prints ``error: ...``), unless ``TABOM_UNSAFE_UNSANDBOXED=1`` is set: then programs run as the
caller with only the limits and the guard, and a warning says so. docs/evaluation.md lists
exactly what is contained and what is not.

    >>> run_python("print(6*7)").stdout
    '42\\n'
"""

from __future__ import annotations

import marshal
import math
import os
import shutil
import select
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

MAX_OUTPUT_BYTES = 1 << 20  # stdout/stderr beyond this kill the child (RLIMIT_FSIZE)
RETURN_OUTPUT_CHARS = 64 * 1024  # at most this much of each stream is returned
UNSAFE_ENV = "TABOM_UNSAFE_UNSANDBOXED"  # "1": run unconfined where isolation is unavailable
SANDBOX_UID = SANDBOX_GID = 65534  # nobody/nogroup: who the program runs as when tabom is root
WORKDIR = "/sandbox"  # the program's working directory inside the sandbox
DISK_MB = 64  # size of each of the program's tmpfs mounts (/sandbox and /tmp)
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache",
                "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/passwd", "/etc/group",
                "/etc/nsswitch.conf", "/etc/hosts", "/etc/alternatives")
_LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_launch.py")
_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": WORKDIR, "TMPDIR": "/tmp",
        # no threads (RLIMIT_NPROC 0 counts them): numerical libraries must not start a pool
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1"}
_BACKSTOP_S = 30.0  # extra seconds the launcher gets (setup, teardown) before it is killed itself

_GUARD = r'''
import os as _os, sys as _sys, resource as _rs
for _lim, _val in zip(("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NPROC", "RLIMIT_CORE"),
                      [int(v) for v in _sys.argv[1:6]]):
    _rs.setrlimit(getattr(_rs, _lim), (_val, _val))
del _lim, _val, _rs
_ROOT = _os.getcwd()
_OK = (_ROOT, *_sys.argv[6:])  # directories the program may write to: its own, and any given
_sys.argv = ["main.py"]
_PROC = {"os.system", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec",
         "subprocess.Popen", "os.kill", "os.killpg", "signal.pthread_kill", "pty.spawn",
         "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo",
         "socket.sendto", "socket.sendmsg", "ctypes.dlopen", "resource.setrlimit", "resource.prlimit",
         "ctypes.dlsym",
         "ctypes.dlsym/handle", "os.symlink", "os.link", "os.chroot", "os.setuid"}
_PATHS = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown",
          "os.truncate", "os.utime", "shutil.rmtree", "os.setxattr", "os.removexattr"}
_WFLAGS = _os.O_WRONLY | _os.O_RDWR | _os.O_CREAT | _os.O_TRUNC | _os.O_APPEND
def _inside(p):
    if isinstance(p, int):
        return True
    p = _os.fsdecode(p)
    full = _os.path.normpath(_os.path.join(_ROOT, p) if not _os.path.isabs(p) else p)
    return any(full == d or full.startswith(d + _os.sep) for d in _OK) or full == "/dev/null"
def _hook(event, args):
    if event in _PROC:
        raise PermissionError("sandbox: " + event + " is not allowed")
    if event == "open" and len(args) >= 3:
        mode, flags = args[1], args[2] or 0
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (flags & _WFLAGS)
        if writing and not _inside(args[0]):
            raise PermissionError("sandbox: writing outside the sandbox directory")
    elif event in _PATHS:
        for p in args:
            if isinstance(p, (str, bytes, _os.PathLike)) and not _inside(p):
                raise PermissionError("sandbox: " + event + " outside the sandbox directory")
_sys.addaudithook(_hook)
def _blocked(*a, **k):
    raise PermissionError("sandbox: not allowed")
for _name in ("fork", "forkpty", "system", "popen", "execv", "execve", "execvp", "execvpe",
              "execl", "execle", "execlp", "execlpe", "spawnv", "spawnve", "spawnl",
              "posix_spawn", "posix_spawnp", "kill", "killpg", "setsid"):
    if hasattr(_os, _name):
        setattr(_os, _name, _blocked)
del _name
#UNCONFINED
_src = open("main.py", encoding="utf-8").read()
_g = {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__}
exec(compile(_src, "main.py", "exec"), _g)
'''
# Unconfined runs only (the hook refuses these events anyway; importing them costs start-up time)
_UNCONFINED_EXTRA = """import subprocess as _sp, socket as _so, _socket
_sp.Popen = _sp.run = _sp.call = _sp.check_call = _sp.check_output = _blocked
_so.socket = _so.create_connection = _so.socketpair = _so.fromfd = _blocked
_socket.socket = _blocked
del _sp, _so, _socket
"""
# Isolated runs start Python with -S (no site: .pth hooks cost start-up time and would run from the
# read-only installation anyway): the site-packages directories go on the path, and exit()/quit().
_ISOLATED_PRELUDE = """import sys as _s, builtins as _b
_s.path.extend({site!r})
_b.exit = _b.quit = _s.exit
del _s, _b
"""


def _guard(isolated: bool) -> str:
    """The guard prelude's source for an isolated or an unconfined run."""
    if isolated:
        site_dirs = [p for p in site.getsitepackages() if os.path.isdir(p)]
        return _ISOLATED_PRELUDE.format(site=site_dirs) + _GUARD.replace("#UNCONFINED\n", "")
    return _GUARD.replace("#UNCONFINED\n", _UNCONFINED_EXTRA)


class SandboxUnavailableError(ValueError):
    """The sandbox cannot isolate programs here (or failed to set up) and no opt-in was given."""


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one sandboxed run; ``ok`` means exit status 0 within the time limit."""

    ok: bool
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool


@dataclass(frozen=True)
class Isolation:
    """What :func:`isolation` found: ``available``, with a user namespace or not, and why not."""

    available: bool
    user_ns: bool = False
    reason: str = ""


def readable_paths() -> tuple[str, ...]:
    """Host paths the program sees (read-only), parents first: system dirs, a few /etc files, Python.

    A Python prefix inside an already listed directory on the same filesystem is left out.
    """
    python = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
              os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    python |= {os.path.realpath(p) for p in python}
    chosen: list[str] = []
    for path in sorted({*SYSTEM_PATHS, *python}, key=lambda p: (p.count("/"), p)):
        if not os.path.lexists(path):
            continue
        covered = any(path.startswith(a.rstrip("/") + "/") and not os.path.islink(a)
                      and os.stat(a).st_dev == os.stat(path).st_dev for a in chosen)
        if not covered:
            chosen.append(path)
    return tuple(chosen)


def _read_capped(fh: BinaryIO) -> str:
    """At most ``RETURN_OUTPUT_CHARS`` bytes of an output file, read through tabom's own descriptor."""
    fh.seek(0)
    return fh.read(RETURN_OUTPUT_CHARS).decode("utf-8", errors="replace")


def _limits(timeout_s: float, memory_mb: int, processes: int) -> dict[str, int]:
    """The rlimits: address space, CPU seconds, file size, process count (0: none), core size."""
    return {"AS": memory_mb * 1024 * 1024, "CPU": int(math.ceil(timeout_s)) + 1,
            "FSIZE": MAX_OUTPUT_BYTES, "NPROC": processes, "CORE": 0}


def _wait_exit(proc: "subprocess.Popen[bytes]", timeout_s: float) -> bool:
    """Wait for ``proc`` to exit (not reaped) at most ``timeout_s``; True when it did.

    A pidfd wakes up the moment it exits (``Popen.wait(timeout)`` polls, up to 50 ms late).
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:  # a kernel before 5.3
        try:
            proc.wait(timeout=timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        poller = select.poll()  # not select(): a busy caller may hold descriptors past 1024
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(max(0, math.ceil(timeout_s * 1000))))
    finally:
        os.close(pidfd)


def _launch(code: str, stdin: str, timeout_s: float, memory_mb: int, *, user_ns: bool,
            guard: bool = True) -> SandboxResult:
    """One isolated run through the launcher. ``guard=False`` drops the defence in depth (no audit
    hook, 64 processes allowed) so tests can show that the namespaces alone contain a program."""
    limits = _limits(timeout_s, memory_mb, 0 if guard else 64)
    if guard:
        argv = [sys.executable, "-I", "-S", "-B", "-c", _guard(True), *(str(v) for v in limits.values()), "/tmp"]
    else:
        argv = [sys.executable, "-I", "-B", "main.py"]
    host_dir = tempfile.mkdtemp(prefix="tabom_sandbox_")
    try:
        os.mkdir(os.path.join(host_dir, "root"))
        with open(os.path.join(host_dir, "main.py"), "w", encoding="utf-8") as fh:
            fh.write(code)
        with open(os.path.join(host_dir, "stdin.txt"), "w", encoding="utf-8") as fh:
            fh.write(stdin)
        spec = {"host_dir": host_dir, "user_ns": user_ns, "drop": not user_ns,
                "uid": SANDBOX_UID, "gid": SANDBOX_GID,
                "ro_paths": list(readable_paths()), "workdir": WORKDIR, "disk_mb": DISK_MB,
                "limits": limits, "timeout_s": timeout_s, "argv": argv, "env": _ENV}
        with open(os.path.join(host_dir, "spec"), "wb") as fh:
            marshal.dump(spec, fh)
        cmd = [sys.executable, "-I", "-S", "-B", _LAUNCHER, host_dir]
        with open(os.path.join(host_dir, "stdin.txt"), "rb") as fin, open(
            os.path.join(host_dir, "stdout"), "w+b"
        ) as fout, open(os.path.join(host_dir, "stderr"), "w+b") as ferr:
            proc = subprocess.Popen(cmd, cwd=host_dir, env=_ENV, stdin=fin, stdout=fout, stderr=ferr,
                                    start_new_session=True, close_fds=True)
            try:
                if not _wait_exit(proc, timeout_s + _BACKSTOP_S):
                    _kill_group(proc.pid)  # the backstop: the program goes with the launcher
            except BaseException:  # Ctrl-C: the program has a parent-death SIGKILL
                _kill_group(proc.pid)  # and goes with the launcher
                raise
            finally:
                proc.wait()
            stdout, stderr = _read_capped(fout), _read_capped(ferr)
        try:
            with open(os.path.join(host_dir, "status"), "rb") as fh:
                status = marshal.load(fh)
        except (OSError, ValueError, EOFError, TypeError):
            status = {"returncode": -signal.SIGKILL, "timed_out": True, "error": None}
            if proc.returncode != -signal.SIGKILL:
                status["error"] = f"the launcher exited with {proc.returncode}: {stderr[-2000:]}"
    finally:
        shutil.rmtree(host_dir, ignore_errors=True)
    if status["error"]:
        raise SandboxUnavailableError(f"sandbox: setting up the isolation failed: {status['error']}")
    returncode, timed_out = int(status["returncode"]), bool(status["timed_out"])
    return SandboxResult(ok=returncode == 0 and not timed_out, returncode=returncode,
                         stdout=stdout, stderr=stderr, timed_out=timed_out)


_PROBE = "import os\nopen('p', 'w').write('x')\ntry:\n    open('/p', 'w')\nexcept OSError:\n    print('ro')\n"
_PROBE += "print(os.getuid(), open('p').read(), len([d for d in os.listdir('/proc') if d.isdigit()]))\n"


def _probe(user_ns: bool) -> str:
    """Empty when an isolated run works in this mode, else why not."""
    expected = f"ro\n{0 if user_ns else SANDBOX_UID} x 1\n"
    try:
        r = _launch(_PROBE, "", 20.0, 256, user_ns=user_ns, guard=False)
    except (OSError, SandboxUnavailableError) as exc:
        return str(exc)
    if r.stdout != expected:
        return f"probe printed {r.stdout!r} (expected {expected!r}), stderr {r.stderr[-500:]!r}"
    return ""


_isolation_lock = threading.Lock()
_isolation_cache: list[Isolation] = []


def isolation() -> Isolation:
    """Whether (and how) programs can be isolated here; probed once per process, then cached.

    Root uses plain namespaces (the program runs as nobody; root without ``CAP_SYS_ADMIN`` gets
    none: a user namespace made by root would leave the program real root to the files it sees);
    another user a user namespace. The try runs a probe program through the whole launcher.
    """
    with _isolation_lock:
        if not _isolation_cache:
            if not sys.platform.startswith("linux"):
                _isolation_cache.append(Isolation(False, reason=f"Linux namespaces needed, this is {sys.platform}"))
            else:
                reasons = []
                for user_ns in ((False,) if os.geteuid() == 0 else (True,)):
                    reason = _probe(user_ns)
                    if not reason:
                        _isolation_cache.append(Isolation(True, user_ns=user_ns))
                        break
                    reasons.append(f"{'user namespace' if user_ns else 'as root'}: {reason}")
                else:
                    _isolation_cache.append(Isolation(False, reason="; ".join(reasons)))
        return _isolation_cache[0]


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _run_unconfined(code: str, stdin: str, timeout_s: float, memory_mb: int) -> SandboxResult:
    """The opt-in fallback: the caller's user, the guard and the limits only, in a temp dir."""
    workdir = tempfile.mkdtemp(prefix="tabom_unsandboxed_")
    try:
        with open(os.path.join(workdir, "main.py"), "w", encoding="utf-8") as fh:
            fh.write(code)
        limits = [str(v) for v in _limits(timeout_s, memory_mb, 0).values()]
        with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
            fin.write(stdin.encode("utf-8"))
            fin.seek(0)
            proc = subprocess.Popen([sys.executable, "-I", "-B", "-c", _guard(False), *limits], cwd=workdir,
                                    env={**_ENV, "HOME": workdir, "TMPDIR": workdir}, stdin=fin, stdout=fout,
                                    stderr=ferr, start_new_session=True, close_fds=True)
            try:
                proc.wait(timeout=timeout_s)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            _kill_group(proc.pid)  # stray descendants in the group (not those that left it)
            proc.wait()
            stdout, stderr = _read_capped(fout), _read_capped(ferr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return SandboxResult(ok=proc.returncode == 0 and not timed_out, returncode=proc.returncode,
                         stdout=stdout, stderr=stderr, timed_out=timed_out)


_warned: list[bool] = []


def run_python(
    code: str, *, stdin: str = "", timeout_s: float = 5.0, memory_mb: int = 512
) -> SandboxResult:
    """Run ``code`` as a script in the sandbox and collect its output.

    ``timeout_s`` is wall-clock time (the CPU limit is the same, rounded up); ``memory_mb`` bounds
    the address space. Output beyond 1 MiB per stream kills the program; at most 64 KiB of each
    stream is returned. Raises :class:`SandboxUnavailableError` where programs cannot be isolated
    and ``TABOM_UNSAFE_UNSANDBOXED=1`` is not set.
    """
    if timeout_s <= 0:
        raise ValueError(f"run_python: timeout_s: must be positive, got {timeout_s}")
    if memory_mb < 64:
        raise ValueError(f"run_python: memory_mb: at least 64 is needed to start Python, got {memory_mb}")
    found = require_isolation()
    if found.available:
        return _launch(code, stdin, timeout_s, memory_mb, user_ns=found.user_ns)
    return _run_unconfined(code, stdin, timeout_s, memory_mb)


def require_isolation() -> Isolation:
    """:func:`isolation` when programs can be isolated, or when ``TABOM_UNSAFE_UNSANDBOXED=1``
    (then warned about, once per process); else :class:`SandboxUnavailableError`. Code benchmarks
    call it when built, so a run stops before decoding rather than at scoring."""
    found = isolation()
    if found.available:
        return found
    if os.environ.get(UNSAFE_ENV) != "1":
        raise SandboxUnavailableError(
            f"sandbox: programs cannot be isolated on this machine ({found.reason}); refusing to run "
            f"generated code unconfined. Set {UNSAFE_ENV}=1 to run it anyway as your own user "
            "(see docs/evaluation.md, 'The code sandbox')")
    if not _warned:
        _warned.append(True)
        warnings.warn(f"{UNSAFE_ENV}=1: generated code runs WITHOUT isolation, as this user, with only "
                      f"resource limits and an audit hook ({found.reason})", RuntimeWarning, stacklevel=3)
    return found


def run_many(
    codes: list[str], workers: int = 2, *, stdin: str = "", timeout_s: float = 5.0, memory_mb: int = 512
) -> list[SandboxResult]:
    """Run several programs, ``workers`` at a time; results come back in input order."""
    if workers < 1:
        raise ValueError(f"run_many: workers: must be at least 1, got {workers}")
    if not codes:
        return []

    def one(code: str) -> SandboxResult:
        return run_python(code, stdin=stdin, timeout_s=timeout_s, memory_mb=memory_mb)

    with ThreadPoolExecutor(max_workers=min(workers, len(codes))) as pool:
        return list(pool.map(one, codes))
