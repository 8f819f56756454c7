"""Driving `python -m logitnet` as a user's shell would, shared by the command-line tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path


def run(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m logitnet *args` in `cwd`, its output captured."""
    return subprocess.run([sys.executable, "-m", "logitnet", *args], check=False, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def kill_after_first_checkpoint(args: list[str], cwd: Path, checkpoint: Path) -> None:
    """Start `logitnet *args` and SIGKILL it once `checkpoint` exists (or after 60 s)."""
    proc = subprocess.Popen([sys.executable, "-m", "logitnet", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not checkpoint.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # mid-training, after at least one checkpoint
    proc.wait()


def assert_a_killed_run_resumes_to_the_same_file(args: list[str], cwd: Path) -> None:
    """`logitnet *args` run whole, and run again killed after its first checkpoint then resumed
    with --resume: the two model files are the same bytes."""
    assert run(*args, "--out", "whole.logitnet", cwd=cwd).returncode == 0
    ckpt = cwd / "cut.logitnet.checkpoint"
    kill_after_first_checkpoint([*args, "--out", "cut.logitnet"], cwd, ckpt)
    assert ckpt.exists() and not (cwd / "cut.logitnet").exists()
    resumed = run("train", "--resume", str(ckpt), "--quiet", cwd=cwd)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch" in resumed.stdout
    assert (cwd / "cut.logitnet").read_bytes() == (cwd / "whole.logitnet").read_bytes()
