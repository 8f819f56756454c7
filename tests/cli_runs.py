"""Driving `python -m logitnet` as a user's shell would, shared by the command-line tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path


def kill_after_first_checkpoint(args: list[str], cwd: Path, checkpoint: Path) -> None:
    """Start `logitnet *args` and SIGKILL it once `checkpoint` exists (or after 60 s)."""
    proc = subprocess.Popen([sys.executable, "-m", "logitnet", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not checkpoint.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # mid-training, after at least one checkpoint
    proc.wait()
