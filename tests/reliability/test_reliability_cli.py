"""Command-line errors: every expected failure is one `error: ...` line and exit 2, never a traceback.

Each case runs the real command line (`python -c "from tabom.cli import main; main()"`, what the
`tabom` script runs) in a subprocess and asserts the exit status, exactly one `error:` line naming
the file or option, no `Traceback`, and that no output was left behind. The read-only and full
disks are real: a read-only bind mount and a full 64 KiB tmpfs in a private mount namespace
(`unshare -m`, root only; skipped where it cannot run, the message format is also checked
in-process with the kernel's own ENOSPC from /dev/full).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tabom.errors import failure_message
from tabom.models.loading import TINY_DIR, load, save
from tabom.models.tiny import build_tiny

ENTRY = "from tabom.cli import main; main()"
SMALL = ["--hidden-size", "16", "--layers", "1", "--heads", "2", "--intermediate-size", "16", "--threads", "1",
         "--n-per-family", "2", "--batch-size", "2", "--steps", "1"]


def tabom(*args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = (),
          code: str = ENTRY) -> subprocess.CompletedProcess:
    """Run `tabom ARGS` (python -c CODE; optionally under `prefix`, e.g. unshare) and capture its output."""
    full_env = {k: v for k, v in os.environ.items() if k != "TABOM_DEBUG"}
    full_env.update({"OMP_NUM_THREADS": "1", **(env or {})})
    return subprocess.run([*prefix, sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=300, env=full_env)


def in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> subprocess.CompletedProcess:
    """`tabom.cli.main()` with ARGS in this process (no interpreter start-up): its exit status and output."""
    from tabom.cli import main

    monkeypatch.setattr(sys, "argv", ["tabom", *args])
    monkeypatch.delenv("TABOM_DEBUG", raising=False)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, exit_info.value.code, captured.out, captured.err)


def one_error(res: subprocess.CompletedProcess, *fragments: str) -> str:
    """Assert exit 2, one `error:` line holding every fragment, no traceback; return the line."""
    errors = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr[-2000:]
    assert len(errors) == 1, res.stderr[-2000:]
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def small_model_dir(path: Path) -> Path:
    """A saved random 1-layer tiny model (a few KB of weights)."""
    return save(build_tiny(seed=0, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           num_key_value_heads=2, intermediate_size=16), path)


# ---- the handler itself -------------------------------------------------------------------------


def test_a_bug_keeps_its_traceback_and_tabom_debug_shows_every_traceback(tmp_path) -> None:
    # A genuine bug (here a KeyError planted in `data inspect`) is not dressed up as bad input.
    traj = tmp_path / "t.jsonl"
    traj.write_text("")
    code = "import tabom.commands.data as d; d.inspect_file = lambda *a, **k: {}['planted']; " + ENTRY
    res = tabom("data", "inspect", str(traj), code=code)
    assert res.returncode == 1 and "KeyError" in res.stderr and "Traceback" in res.stderr
    assert not any(line.startswith("error: ") for line in res.stderr.splitlines())
    # Bad input with TABOM_DEBUG=1: the traceback instead of the one line.
    res = tabom("reproduce", "--n-train", "0", "--out", str(tmp_path / "r"), env={"TABOM_DEBUG": "1"})
    assert res.returncode == 1 and "Traceback" in res.stderr and "--n-train" in res.stderr
    assert not any(line.startswith("error: ") for line in res.stderr.splitlines())
    assert not (tmp_path / "r").exists()


def test_ctrl_c_exits_130_without_a_traceback(tmp_path) -> None:
    # A terminal's Ctrl-C reaches a process whose SIGINT has Python's default handler. A test run
    # started in the background (CI, `cmd &`) inherits SIGINT *ignored*, and Python then never
    # installs its handler, so the child restores it first, as a terminal session would have it.
    entry = f"import signal; signal.signal(signal.SIGINT, signal.default_int_handler); {ENTRY}"
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", entry, "pretrain", "--out", str(out), *SMALL[:-2], "--steps", "100000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    log = out / "pretrain_log.jsonl"
    deadline = time.time() + 120
    while not (log.exists() and log.stat().st_size > 0) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]


def test_failure_message_sorts_expected_failures_from_bugs(tmp_path) -> None:
    assert failure_message(KeyError("x")) is None and failure_message(TypeError("x")) is None
    assert failure_message(ValueError("a.yaml:3: lr:\n  must be > 0")) == "a.yaml:3: lr: must be > 0"
    erofs = OSError(errno.EROFS, os.strerror(errno.EROFS), "/data/out")
    assert failure_message(erofs) == "/data/out: Read-only file system (choose a writable output folder)"
    quota = OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/data/out/log.jsonl")
    assert failure_message(quota).startswith("/data/out/log.jsonl: Disk quota exceeded (free some space")
    moved = OSError(errno.EACCES, os.strerror(errno.EACCES), "a.tmp", None, "b")
    assert failure_message(moved).startswith("a.tmp -> b: Permission denied")
    assert failure_message(FileNotFoundError("m: not a model folder")) == "m: not a model folder"
    assert failure_message(OverflowError("int too large")) == "a number is too large: int too large"
    assert "out of memory" in failure_message(MemoryError())
    # The kernel's own ENOSPC from a write (which names no file): the file comes from the traceback.
    full = tmp_path / "results.json"
    full.symlink_to("/dev/full")
    with pytest.raises(OSError) as info:
        full.write_text("x" * 10)
    assert info.value.filename is None
    assert failure_message(info.value) == f"{full}: No space left on device (free some space or write elsewhere)"
    # Bytes that are not UTF-8 read from a named file.
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UnicodeDecodeError) as info:
        binary.read_text(encoding="utf-8")
    assert failure_message(info.value).startswith(f"{binary}: not UTF-8 text")


# ---- files of the wrong kind --------------------------------------------------------------------


def test_a_directory_given_as_a_recipe_or_prompt_file(tmp_path, monkeypatch, capsys) -> None:
    one_error(tabom("train", "--recipe", str(tmp_path)), str(tmp_path))  # the real entry point, once
    out = tmp_path / "t.jsonl"
    one_error(in_process(monkeypatch, capsys, "generate", "--prompts", str(tmp_path), "--out", str(out)),
              str(tmp_path))
    assert not out.exists()


def test_a_binary_or_deeply_nested_file(tmp_path, monkeypatch, capsys) -> None:
    binary = tmp_path / "tasks.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    one_error(in_process(monkeypatch, capsys, "pretrain", "--tasks", str(binary), "--out", str(tmp_path / "p")),
              str(binary), "UTF-8")
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"id": "a", "prompt": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    out = tmp_path / "t.jsonl"
    one_error(in_process(monkeypatch, capsys, "generate", "--prompts", str(deep), "--out", str(out)), str(deep))
    assert not out.exists() and not (tmp_path / "p").exists()
    # `data inspect` lists each bad line itself (then exits 2): the line is named, no traceback.
    res = in_process(monkeypatch, capsys, "data", "inspect", str(deep))
    assert res.returncode == 2 and "Traceback" not in res.stderr + res.stdout
    assert f"{deep}:1" in res.stderr + res.stdout


# ---- models -------------------------------------------------------------------------------------


def test_a_corrupt_model_safetensors_names_the_file(tmp_path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    for name in ("config.json", "diffusion.json", "tokenizer.json", "generation_config.json"):
        shutil.copy(TINY_DIR / name, model / name)
    (model / "model.safetensors").write_bytes(os.urandom(100))
    out = tmp_path / "eval"
    one_error(tabom("eval", "--model", str(model), "--tasks", "math_chain", "--limit", "1", "--out", str(out)),
              f"{model / 'model.safetensors'}: corrupt or truncated safetensors file")
    assert not out.exists()


def test_broken_model_folders_name_the_file_and_the_tensor(tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    folder = small_model_dir(tmp_path / "m")
    weights = folder / "model.safetensors"
    tensors = load_file(str(weights))
    assert load(folder, device="cpu").family == "tiny"  # the untouched folder loads
    # Truncated file.
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValueError, match=f"{weights}: corrupt or truncated safetensors file"):
        load(folder, device="cpu")
    # A tensor missing: named with the file (transformers alone would initialise it at random).
    name = "model.layers.0.mlp.down_proj.weight"
    save_file({k: v for k, v in tensors.items() if k != name}, str(weights), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=f"{weights}: 1 weight tensor\\(s\\) missing: {name}"):
        load(folder, device="cpu")
    # A tensor of the wrong shape.
    save_file({**tensors, name: tensors[name][:, :3].contiguous()}, str(weights), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=f"{weights}: {name}: shape \\(16, 3\\) but config.json implies \\(16, 16\\)"):
        load(folder, device="cpu")
    # A tensor the architecture has no place for.
    save_file({**tensors, "model.extra.weight": tensors[name].clone()}, str(weights), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="unexpected weight tensor.*model.extra.weight \\(in model.safetensors\\)"):
        load(folder, device="cpu")
    # config.json: bad JSON keeps naming path:line; bytes that are not UTF-8 name the file.
    (folder / "config.json").write_text('{\n  "model_type": "llama",\n  oops\n}\n')
    with pytest.raises(ValueError, match=f"{folder / 'config.json'}:3: invalid JSON"):
        load(folder, device="cpu")
    (folder / "config.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError, match=f"{folder / 'config.json'}: not UTF-8 text"):
        load(folder, device="cpu")


def test_a_device_this_machine_lacks(tmp_path, monkeypatch, capsys) -> None:
    import torch

    from tabom.models.loading import check_device

    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    one_error(in_process(monkeypatch, capsys, "eval", "--device", "cuda:7", "--tasks", "math_chain", "--limit", "1",
                         "--out", str(tmp_path / "e")), "error: device cuda:7 is not available (")
    one_error(in_process(monkeypatch, capsys, "pretrain", "--device", "cuda:7", "--out", str(tmp_path / "p"), *SMALL),
              "error: device cuda:7 is not available (")
    assert not (tmp_path / "e").exists() and not (tmp_path / "p").exists()
    with pytest.raises(ValueError, match="device 'gpu': not a device name"):
        check_device("gpu")
    assert check_device("cpu") == torch.device("cpu")


# ---- numbers ------------------------------------------------------------------------------------


def test_pretrain_numbers_are_checked_before_any_output(tmp_path, monkeypatch, capsys) -> None:
    from tabom.pretraining.pretrain import PretrainConfig, pretrain

    out = tmp_path / "run"
    one_error(in_process(monkeypatch, capsys, "pretrain", "--out", str(out), "--hidden-size", "0"),
              "error: --hidden-size: must lie in [1, 1048576], got 0")
    one_error(in_process(monkeypatch, capsys, "pretrain", "--out", str(out), "--lr", "nan"),
              "error: --lr: must be a finite number >= 0, got nan")
    for fields, message in (
        (dict(model={"hidden_size": 30, "num_attention_heads": 4}), "hidden_size: 30 is not 4 attention heads of an even"),
        (dict(model={"num_attention_heads": 0}), "model_shape.num_attention_heads: "),
        (dict(model={"num_key_value_heads": 3}), "num_key_value_heads: 3 does not divide num_attention_heads 4"),
        (dict(seed=2**70), "seed: must be an integer in \\[0, 2\\*\\*32\\)"),
        (dict(threads=100_000), "threads: at most 4096"),
        (dict(model={"layers": 2}), "model_shape.layers: unknown field"),
        (dict(n_per_family=0), "n_per_family: must be an integer >= 1, got 0"),
        (dict(weight_decay=float("inf")), "weight_decay: must be a finite number >= 0"),
        (dict(save_every=-1), "save_every: must be an integer >= 0"),
        (dict(steps=True), "steps: must be an integer >= 1, got True"),
    ):
        with pytest.raises(ValueError, match=message):
            PretrainConfig(out=str(out), **fields)
    # Against the data: more rows per batch than examples (was an IndexError mid-training).
    small = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                 intermediate_size=16)
    with pytest.raises(ValueError, match="batch_size: 500 is more than the 12 training examples"):
        pretrain(PretrainConfig(out=str(out), batch_size=500, n_per_family=2, threads=1, model=small), progress=False)
    with pytest.raises(ValueError, match="gen_length: 100000 leaves no room for a prompt in the model's 512 positions"):
        pretrain(PretrainConfig(out=str(out), gen_length=100_000, n_per_family=2, threads=1, model=small), progress=False)
    with pytest.raises(ValueError, match="gen_length: the longest prompt .* exceed the model's 512 positions"):
        pretrain(PretrainConfig(out=str(out), gen_length=500, n_per_family=2, threads=1, model=small), progress=False)
    assert not out.exists()


def test_reproduce_counts_of_zero_are_errors_not_the_defaults(tmp_path, monkeypatch, capsys) -> None:
    from tabom.reproduce.plan import make_plan

    assert make_plan(True, n_train=None).n_train == 64 and make_plan(True, n_train=3).n_train == 3
    for field in ("n_train", "n_eval", "n_tds", "train_steps"):
        with pytest.raises(ValueError, match=f"{field}: must be >= 1, got 0"):
            make_plan(True, **{field: 0})
    for seeds in (0, 10**11):  # 10**11 seeds was a MemoryError building range(seeds)
        with pytest.raises(ValueError, match=f"seeds: must be in \\[1, 100\\] .*, got {seeds}"):
            make_plan(True, seeds=seeds)
    with pytest.raises(ValueError, match="domains: empty"):
        make_plan(True, domains=())
    out = tmp_path / "r"
    one_error(in_process(monkeypatch, capsys, "reproduce", "--quick", "--n-train", "0", "--out", str(out)),
              "error: --n-train: must be >= 1, got 0")
    assert not out.exists()


def test_reproduce_powered_options_name_themselves(tmp_path, monkeypatch, capsys) -> None:
    """--n-eval-powered, --secondary-seeds and --domain-seeds: one error line naming the option, exit 2,
    nothing written."""
    out = tmp_path / "r"
    for args, message in (
            (("--n-eval-powered", "10"), "error: --n-eval-powered: must be >= n_eval (64), got 10"),
            (("--secondary-seeds", "4"), "error: --secondary-seeds: must be in [1, 3], got 4"),
            (("--domain-seeds", "math5"), "error: --domain-seeds: 'math5' is not DOMAIN=N (e.g. math=5)"),
            (("--domain-seeds", "physics=2"), "error: --domain-seeds: physics=2: a domain of the plan"),
            (("--domain-seeds", "math=0"), "error: --domain-seeds: math=0: a domain of the plan and 1 to 100")):
        one_error(in_process(monkeypatch, capsys, "reproduce", *args, "--out", str(out)), message)
        assert not out.exists()


# ---- runs that exist already --------------------------------------------------------------------


def test_an_existing_run_without_resume_is_refused_and_left_alone(tmp_path, monkeypatch, capsys) -> None:
    run = tmp_path / "run"
    (run / "epoch_1").mkdir(parents=True)
    (run / "epoch_1" / "COMPLETE").write_text("")
    (run / "epoch_1" / "trainer_state.json").write_text('{"global_step": 5}')
    one_error(in_process(monkeypatch, capsys, "train", "--recipe", "tiny_tabom", f"out={run}",
                         f"data.path={tmp_path / 'none.jsonl'}"), str(run), "--resume")
    assert sorted(p.name for p in run.rglob("*")) == ["COMPLETE", "epoch_1", "trainer_state.json"]
    # `tabom pretrain` into a folder holding a pretraining run: refused, the run untouched.
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "pretrain_log.jsonl").write_text('{"step": 0}\n')
    one_error(in_process(monkeypatch, capsys, "pretrain", "--out", str(tmp_path / "p"), *SMALL),
              str(tmp_path / "p"), "--resume")
    assert (tmp_path / "p" / "pretrain_log.jsonl").read_text() == '{"step": 0}\n'
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["pretrain_log.jsonl"]


# ---- read-only and full disks (real ones, in a private mount namespace) --------------------------


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


needs_mount_namespace = pytest.mark.skipif(not _unshare_works(), reason="unshare -m with mount needs root "
                                           "(the messages are checked by test_failure_message_... too)")


@needs_mount_namespace
def test_a_read_only_output_folder(tmp_path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    setup = f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} && exec \"$@\""
    res = tabom("pretrain", "--out", str(ro / "run"), *SMALL, prefix=("unshare", "-m", "sh", "-c", setup, "sh"))
    one_error(res, f"error: {ro / 'run'}: Read-only file system (choose a writable output folder)")


@needs_mount_namespace
def test_a_full_disk(tmp_path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    setup = (f"mount -t tmpfs -o size=64k tmpfs {full} && (dd if=/dev/zero of={full}/fill bs=4k 2>/dev/null; true) "
             "&& exec \"$@\"")
    res = tabom("pretrain", "--out", str(full / "run"), *SMALL, prefix=("unshare", "-m", "sh", "-c", setup, "sh"))
    one_error(res, f"error: {full / 'run' / 'pretrain_log.jsonl'}: No space left on device")


def test_a_model_folder_cut_short_has_no_metadata_and_says_so(tmp_path) -> None:
    # diffusion.json is written last, through a temporary file: here the temporary file is
    # /dev/full, so the write fails with the kernel's ENOSPC as on a full disk.
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "diffusion.json.tmp").symlink_to("/dev/full")
    with pytest.raises(OSError) as info:
        small_model_dir(folder)
    assert info.value.errno == errno.ENOSPC
    assert failure_message(info.value).startswith(f"{folder / 'diffusion.json.tmp'}: No space left on device")
    assert not (folder / "diffusion.json").exists()
    with pytest.raises(ValueError, match="expected a tabom folder with diffusion.json"):
        load(folder, device="cpu")


def test_the_probe_command_line_reports_like_tabom(tmp_path, capsys) -> None:
    from tabom.pretraining.probe import main as probe_main

    with pytest.raises(SystemExit) as exit_info:
        probe_main([str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.strip() == f"error: {tmp_path / 'nope'}: not a model folder " \
        "(give 'tiny' or a local checkpoint directory; tabom never downloads weights)"
    with pytest.raises(SystemExit) as exit_info:
        probe_main(["--n", "0", "tiny"])
    assert exit_info.value.code == 2 and "--n: must be >= 1, got 0" in capsys.readouterr().err


def test_a_failed_safetensors_write_is_an_os_error_naming_the_folder(tmp_path) -> None:
    from safetensors import SafetensorError

    from tabom.models.loading import _as_os_error

    written = SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    err = _as_os_error(written, tmp_path / "run")
    assert isinstance(err, OSError) and err.errno == errno.ENOSPC
    assert failure_message(err) == f"{tmp_path / 'run'}: No space left on device (free some space or write elsewhere)"
    corrupt = SafetensorError("Error while deserializing header: header too large")
    assert _as_os_error(corrupt, tmp_path) is corrupt
    assert failure_message(corrupt).startswith("corrupt or unreadable safetensors file: ")
