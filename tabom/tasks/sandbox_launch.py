"""The sandbox's launcher: new namespaces, a read-only root, no privileges, then Python.

Run by :mod:`tabom.tasks.sandbox` as ``python -I -S -B sandbox_launch.py HOST_DIR`` in a fresh
process (never imported for use: ``unshare(2)`` needs a single-threaded process, and the callers
of the sandbox run threads). ``HOST_DIR/spec`` holds the settings (a ``marshal``-ed dict written by
the same interpreter); only light standard modules are imported (start-up time is the overhead of
every run), and system calls go through ctypes.

1. The launcher calls ``unshare(CLONE_NEWPID)`` (with ``CLONE_NEWUSER`` and a one-id map of the
   caller to root when the caller is not root), then forks: the child is PID 1 of a new PID
   namespace. The launcher stays outside, unseen by the child, waits ``timeout_s``, SIGKILLs the
   child when it is still running, and reaps it; the kernel kills every other process of a PID
   namespace when its PID 1 dies, and the reap returns only after they are gone. The outcome
   (``returncode``, ``timed_out``, ``error``) goes, marshal-ed, to ``HOST_DIR/status``.
2. The child enters new mount, network, IPC and UTS namespaces, builds a new
   root on a tmpfs (read-only binds of the listed host paths, a few device nodes, a fresh ``/proc``
   for its PID namespace with ``/proc/sys`` read-only, a private tmpfs ``/tmp`` and working
   directory ``/sandbox`` holding a copy of ``main.py``), makes it read-only, ``pivot_root``\\ s into
   it and detaches the old root.
3. It drops every capability (bounding, ambient, inheritable, permitted, effective), sets
   ``no_new_privs``, switches to ``uid``/``gid`` when ``drop`` (tabom runs as root, so plain
   namespaces; not in a user namespace, where ``uid`` is not mapped), re-arms its
   parent-death SIGKILL, sets the resource limits, and ``execve``\\ s ``argv`` with the minimal
   ``env``.

A failure before the exec is written to a close-on-exec pipe the launcher reads: the run then
reports ``error`` instead of a result, which the caller turns into an exception.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import resource
import select
import sys
import time

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SIGKILL = 9
LINUX_CAPABILITY_VERSION_3 = 0x20080522
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "loongarch64": 41, "ppc64le": 203,
                  "ppc64": 203, "s390x": 217, "i686": 217, "i386": 217, "armv7l": 218}
# statvfs flags a bind remount must keep (a user namespace may not clear them) -> mount flags
KEPT_FLAGS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
              (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME))
DEVICES = ("null", "zero", "full", "random", "urandom")
LIMITS = {"AS": resource.RLIMIT_AS, "CPU": resource.RLIMIT_CPU, "FSIZE": resource.RLIMIT_FSIZE,
          "NPROC": resource.RLIMIT_NPROC, "CORE": resource.RLIMIT_CORE}

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    """Raise ``OSError`` naming ``what`` when a libc call returned -1."""
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """``mount(2)``; ``OSError`` naming the target on failure."""
    enc = [None if s is None else s.encode() for s in (source, target, fstype, data)]
    _check(_libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {target}")


def _kept_flags(path: str) -> int:
    """The mount flags of ``path``'s mount that a read-only bind remount must repeat."""
    have = os.statvfs(path).f_flag
    return sum(ms for st, ms in KEPT_FLAGS if have & st)


def _bind_readonly(source: str, target: str) -> None:
    """Bind ``source`` (a directory or a file) at ``target`` read-only, nosuid, nodev."""
    _mount(source, target, None, MS_BIND)
    flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | _kept_flags(source)
    _mount(None, target, None, flags)


def _place(source: str, newroot: str) -> None:
    """Make host ``source`` visible at the same path under ``newroot``, read-only.

    A symbolic link is recreated as a link (``/bin -> usr/bin``); a missing path is skipped.
    """
    target = newroot + source
    if os.path.islink(source):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.lexists(target):
            os.symlink(os.readlink(source), target)
        return
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    elif os.path.exists(source):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            open(target, "wb").close()
    else:
        return
    _bind_readonly(source, target)


def _tmpfs(target: str, options: str, flags: int = MS_NOSUID | MS_NODEV) -> None:
    """Mount a fresh tmpfs at ``target`` (created when missing)."""
    os.makedirs(target, exist_ok=True)
    _mount("tmpfs", target, "tmpfs", flags, options)


def _build_root(spec: dict, newroot: str) -> None:
    """Fill the tmpfs at ``newroot`` with what the program may see (see the module docstring)."""
    owner = f",uid={spec['uid']},gid={spec['gid']}" if spec["drop"] else ""
    _tmpfs(newroot, "size=1m,nr_inodes=4096,mode=0755")
    disk = f"size={spec['disk_mb']}m,nr_inodes=4096"
    _tmpfs(newroot + "/tmp", disk + ",mode=1777")
    work = newroot + spec["workdir"]
    _tmpfs(work, disk + ",mode=0700" + owner)
    for path in spec["ro_paths"]:  # after /tmp: a Python installed under /tmp stays visible
        _place(path, newroot)
    _tmpfs(newroot + "/dev", "size=64k,nr_inodes=64,mode=0755", MS_NOSUID | MS_NOEXEC)
    for name in DEVICES:
        open(f"{newroot}/dev/{name}", "wb").close()
        _mount(f"/dev/{name}", f"{newroot}/dev/{name}", None, MS_BIND)
    for name, link in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                       ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(link, f"{newroot}/dev/{name}")
    _mount(None, newroot + "/dev", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)
    with open(os.path.join(spec["host_dir"], "main.py"), "rb") as src, open(work + "/main.py", "wb") as dst:
        dst.write(src.read())
    if spec["drop"]:
        os.chown(work + "/main.py", spec["uid"], spec["gid"])
    os.makedirs(newroot + "/proc", exist_ok=True)
    try:
        _mount("proc", newroot + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError:
        pass  # a kernel that refuses a fresh proc here (masked /proc): the program gets no /proc at all
    else:
        _mount(newroot + "/proc/sys", newroot + "/proc/sys", None, MS_BIND | MS_REC)
        _mount(None, newroot + "/proc/sys", None, MS_BIND | MS_REMOUNT | MS_RDONLY | _kept_flags(newroot + "/proc/sys"))
    _mount(None, newroot, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _pivot(newroot: str, workdir: str) -> None:
    """Make ``newroot`` the root, detach the old one, and enter ``workdir``."""
    machine = os.uname().machine
    number = SYS_PIVOT_ROOT.get(machine)
    if number is None:
        raise OSError(f"pivot_root: no system call number known for {machine}")
    os.chdir(newroot)
    _check(_libc.syscall(ctypes.c_long(number), b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir(workdir)


def _drop_privileges(spec: dict, last_cap: int) -> None:
    """Drop all capabilities for good, set no_new_privs, and become ``uid``/``gid`` when ``drop``."""
    for cap in range(last_cap + 1):
        _check(_libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0), f"drop capability {cap}")
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient capabilities")
    if spec["drop"]:
        os.setgroups([])
        os.setresgid(spec["gid"], spec["gid"], spec["gid"])
        os.setresuid(spec["uid"], spec["uid"], spec["uid"])
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable for capabilities 0-31 and 32-63
    _check(_libc.capset(header, data), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    # A change of user clears the parent-death signal: set it again, so the program dies with the launcher.
    _check(_libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "parent-death signal")
    for name, value in spec["limits"].items():
        resource.setrlimit(LIMITS[name], (value, value))


def _child(spec: dict, error_fd: int) -> None:
    """PID 1 of the new namespaces: build the root, drop privileges, exec; never returns."""
    try:
        # Switching user (``drop``) clears the parent-death signal until it is set again: PID 1 then
        # stays in the launcher's process group, which the caller's backstop kills (the launcher is
        # root, out of the program's reach). Without a switch (a user namespace: the launcher is
        # the same user as the program) it leaves the group, so ``kill(0, ...)`` cannot reach it.
        if not spec["drop"]:
            os.setsid()
        _check(_libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "parent-death signal")
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            last_cap = int(fh.read())
        newroot = os.path.join(spec["host_dir"], "root")
        _build_root(spec, newroot)
        _pivot(newroot, spec["workdir"])
        _drop_privileges(spec, last_cap)
        os.execve(spec["argv"][0], spec["argv"], spec["env"])
    except BaseException as exc:  # noqa: BLE001  (anything before the exec is a setup failure)
        os.write(error_fd, f"{type(exc).__name__}: {exc}".encode()[:4000])
    os._exit(127)


def _enter_namespaces(spec: dict) -> None:
    """New PID namespace for the next child, and a user namespace mapping this user to its root
    when ``user_ns`` (never for root: the program would be real root to every file it sees, and
    a process cannot map another user once inside its new namespace)."""
    uid, gid = os.geteuid(), os.getegid()
    if spec["user_ns"] and uid == 0:
        raise OSError("a user namespace is for non-root callers: root needs CAP_SYS_ADMIN")
    _check(_libc.unshare(CLONE_NEWPID | (CLONE_NEWUSER if spec["user_ns"] else 0)), "unshare")
    if spec["user_ns"]:
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as fh:
                fh.write(text)


def _wait(pid: int, timeout_s: float) -> tuple[int, bool]:
    """Wait for ``pid`` at most ``timeout_s``, SIGKILL it then; ``(returncode, timed_out)``."""
    deadline = time.monotonic() + timeout_s
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        pidfd = None
    timed_out = True
    while (left := deadline - time.monotonic()) > 0:
        if pidfd is not None:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            poller.poll(max(1, int(left * 1000)))
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            timed_out = False
            break
        if pidfd is None:
            time.sleep(min(0.01, max(left, 0.0)))
    if timed_out:
        os.kill(pid, SIGKILL)
    _, status = os.waitpid(pid, 0)  # returns once the whole PID namespace is gone
    return os.waitstatus_to_exitcode(status), timed_out


def main(host_dir: str) -> int:
    """Run the program that ``host_dir/spec`` describes; write its outcome to ``host_dir/status``."""
    with open(os.path.join(host_dir, "spec"), "rb") as fh:
        spec = marshal.load(fh)
    outcome: dict = {"returncode": None, "timed_out": False, "error": None}
    try:
        _enter_namespaces(spec)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child(spec, write_fd)
        os.close(write_fd)
        chunks = []
        while chunk := os.read(read_fd, 4096):
            chunks.append(chunk)
        os.close(read_fd)
        outcome["returncode"], outcome["timed_out"] = _wait(pid, spec["timeout_s"])
        if chunks:
            outcome["error"] = b"".join(chunks).decode(errors="replace")
    except OSError as exc:
        outcome["error"] = str(exc)
    with open(os.path.join(host_dir, "status"), "wb") as fh:
        marshal.dump(outcome, fh)
    return 0


if __name__ == "__main__":
    os._exit(main(sys.argv[1]))  # nothing to flush or finalize: the status file is closed
