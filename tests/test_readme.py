"""The README's Python examples run as written, and its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import logitnet

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_python_blocks_run_and_show_what_they_say(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks
    # The blocks run in an empty folder (what they write lands there) holding the repository's
    # files that they read.
    for used in re.findall(r'"(tests/data/[^"]+)"', README):
        (tmp_path / used).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / used).write_bytes((ROOT / used).read_bytes())
    monkeypatch.chdir(tmp_path)
    try:
        for block in blocks:
            namespace: dict = {}
            exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
            if "tf.random.set_seed" in block:  # the course example: it learned the digits
                assert namespace["history"].history["loss"][-1] < 0.3
                assert namespace["W1"].shape == (64, 25)
    finally:
        logitnet.backend.set_global_seed(None)  # the course example set the global seed
    # The ops example's comment: the confident row's loss is 8.4967e-18, not 0.0.
    ops_block = next(b for b in blocks if "8.4967e-18" in b)
    ns: dict = {}
    exec(compile(ops_block.split("# Multi-label")[0], "README.md", "exec"), ns)  # noqa: S102
    assert np.isclose(ns["loss"][0], 8.4967e-18, rtol=1e-4)
    # The models example: the Keras file's Adam had taken 6 steps; the ONNX graph agrees.
    moving = next(b for b in blocks if "continued.onnx" in b)
    ns = {}
    exec(compile(moving, "README.md", "exec"), ns)  # noqa: S102
    assert ns["model"].optimizer.iterations == 8 and (tmp_path / "continued.keras").is_file()
    np.testing.assert_array_equal(ns["label"], ns["model"].predict(ns["x"], verbose=0).argmax(axis=1))
    assert np.abs(ns["probabilities"] - ns["model"].predict(ns["x"], verbose=0)).max() < 1e-6
    # The quick start's comment: about 0.99 training accuracy on the digits.
    quick: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), quick)  # noqa: S102
    assert quick["history"].history["accuracy"][-1] > 0.97


def test_the_two_fresh_machine_commands_are_what_ci_runs():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    test_command = 'pip install -e ".[test]" && python -m pytest -q'
    assert test_command in README and test_command in ci
    assert 'pip install ".[cli]" && logitnet train --seed 0' in README
    # Then the comparisons, where a missing framework fails rather than skips.
    compare = ('pip install torch==2.13.0 && pip install -e ".[test,compare]" && '
               "LOGITNET_REQUIRE_FRAMEWORKS=1 python -m pytest -q -m compare")
    assert compare in README and compare in ci
    assert ci.index(test_command) < ci.index(compare)


def test_the_first_command_prints_what_the_readme_shows(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "logitnet", "train", "--seed", "0"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    shown = README.split("The first command prints this")[1].split("```")[1]
    for line in shown.strip().splitlines()[:3] + ["Model saved to model.logitnet"]:
        assert line in out
    accuracy = float(out.split("Test accuracy: ")[1].split()[0])
    assert abs(accuracy - float(shown.split("Test accuracy: ")[1].split()[0])) < 0.02
