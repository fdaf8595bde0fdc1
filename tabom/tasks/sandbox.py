"""Run untrusted Python (model outputs) in a separate, limited process.

``run_python(code)`` starts ``python -I -B`` in a fresh temporary directory
(removed afterwards) in its own session, so a timeout kills the whole process
group. Layers of protection, each enough for the common cases on its own:

1. resource limits the child sets on itself (soft = hard, so they cannot be
   raised again) before any of the code runs: address space (``memory_mb``),
   CPU seconds, file size (which also caps stdout/stderr, written to files),
   process count (ignored for root, hence 2.); no ``preexec_fn``, which is
   unsafe in the threaded processes that call this;
2. a guard prelude run before the code: an audit hook (which code cannot
   remove) refusing process creation (fork, exec, spawn, system, subprocess),
   signals to other processes, sockets, ctypes, and file writes outside the
   temporary directory; ``os.fork``/``os.system``/``subprocess.Popen``/
   ``socket.socket`` are also replaced by functions that raise;
3. ``unshare --net`` (a network namespace with no interfaces) when it works on
   this machine, tested once per process.

    >>> run_python("print(6*7)").stdout
    '42\\n'
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

MAX_OUTPUT_BYTES = 1 << 20  # stdout/stderr beyond this kill the child (RLIMIT_FSIZE)
RETURN_OUTPUT_CHARS = 64 * 1024  # at most this much of each stream is returned

_GUARD = r'''
import os as _os, sys as _sys, resource as _rs
for _lim, _val in zip(("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NPROC", "RLIMIT_CORE"),
                      [int(v) for v in _sys.argv[1:6]]):
    _rs.setrlimit(getattr(_rs, _lim), (_val, _val))
del _lim, _val, _rs
_sys.argv = ["main.py"]
_ROOT = _os.getcwd()
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
    return full == _ROOT or full.startswith(_ROOT + _os.sep) or full == "/dev/null"
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
import subprocess as _sp, socket as _so, _socket
_sp.Popen = _sp.run = _sp.call = _sp.check_call = _sp.check_output = _blocked
_so.socket = _so.create_connection = _so.socketpair = _so.fromfd = _blocked
_socket.socket = _blocked
del _name, _sp, _so, _socket
_src = open("main.py", encoding="utf-8").read()
_g = {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__}
exec(compile(_src, "main.py", "exec"), _g)
'''


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one sandboxed run; ``ok`` means exit status 0 within the time limit."""

    ok: bool
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool


@lru_cache(maxsize=1)
def net_isolation_prefix() -> tuple[str, ...]:
    """``("unshare", "--net", "--")`` when that works here, else ``()``.

    Tested once per process by running Python through it and writing a file in
    a temporary directory; ``--user --net`` (no root needed) is tried second.
    """
    exe = shutil.which("unshare")
    if exe is None:
        return ()
    probe = "open('probe.txt', 'w').write('x'); print(open('probe.txt').read())"
    for prefix in ((exe, "--net", "--"), (exe, "--user", "--net", "--")):
        with tempfile.TemporaryDirectory(prefix="tabom_probe_") as tmp:
            try:
                r = subprocess.run([*prefix, sys.executable, "-I", "-c", probe], cwd=tmp,
                                   capture_output=True, text=True, timeout=20)
            except (OSError, subprocess.SubprocessError):
                continue
        if r.returncode == 0 and r.stdout.strip() == "x":
            return prefix
    return ()


def _read_capped(path: str) -> str:
    with open(path, "rb") as fh:
        data = fh.read(RETURN_OUTPUT_CHARS)
    return data.decode("utf-8", errors="replace")


def _wait_unreaped(pid: int, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for ``pid`` to exit without reaping it; True when it exited."""
    deadline = time.monotonic() + timeout_s
    pause = 0.001
    while True:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.02)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_python(
    code: str, *, stdin: str = "", timeout_s: float = 5.0, memory_mb: int = 512
) -> SandboxResult:
    """Run ``code`` as a script in a limited child process and collect its output.

    ``timeout_s`` is wall-clock time (the CPU limit is the same, rounded up);
    ``memory_mb`` bounds the child's address space. Output beyond 1 MiB per
    stream kills the child; at most 64 KiB of each stream is returned.
    """
    if timeout_s <= 0:
        raise ValueError(f"run_python: timeout_s: must be positive, got {timeout_s}")
    if memory_mb < 64:
        raise ValueError(f"run_python: memory_mb: at least 64 is needed to start Python, got {memory_mb}")
    workdir = tempfile.mkdtemp(prefix="tabom_sandbox_")
    try:
        with open(os.path.join(workdir, "main.py"), "w", encoding="utf-8") as fh:
            fh.write(code)
        with open(os.path.join(workdir, "guard.py"), "w", encoding="utf-8") as fh:
            fh.write(_GUARD)
        with open(os.path.join(workdir, "stdin.txt"), "w", encoding="utf-8") as fh:
            fh.write(stdin)
        out_path = os.path.join(workdir, "stdout.txt")
        err_path = os.path.join(workdir, "stderr.txt")
        mem = memory_mb * 1024 * 1024
        cpu_s = int(math.ceil(timeout_s)) + 1
        # AS, CPU, FSIZE, NPROC (0: no new processes; root ignores it, the guard does not), CORE
        limits = [str(v) for v in (mem, cpu_s, MAX_OUTPUT_BYTES, 0, 0)]
        cmd = [*net_isolation_prefix(), sys.executable, "-I", "-B", "guard.py", *limits]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": workdir}
        timed_out = False
        with open(os.path.join(workdir, "stdin.txt"), "rb") as fin, open(out_path, "wb") as fout, open(
            err_path, "wb"
        ) as ferr:
            proc = subprocess.Popen(
                cmd,
                cwd=workdir,
                env=env,
                stdin=fin,
                stdout=fout,
                stderr=ferr,
                start_new_session=True,
                close_fds=True,
            )
            timed_out = not _wait_unreaped(proc.pid, timeout_s)
            # The child is exited-but-unreaped or still running, so its process group id cannot
            # have been reused yet: killing the group is safe and removes any stray descendant.
            _kill_group(proc.pid)
            proc.wait()
        returncode = proc.returncode
        stdout, stderr = _read_capped(out_path), _read_capped(err_path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return SandboxResult(
        ok=(returncode == 0 and not timed_out),
        returncode=returncode,
        stdout=stdout,
        stderr=stderr,
        timed_out=timed_out,
    )


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
