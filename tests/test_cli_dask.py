"""`logitnet train 'data/*.parquet'` and CSV globs, streamed through Dask as a user runs them: the
split and standardisation over files, the same weights in this process, on local workers and on a
scheduler, a killed run resumed, rows per second in the progress, and every bad file named."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")
pytest.importorskip("pyarrow")
import pandas as pd
from cli_runs import assert_a_killed_run_resumes_to_the_same_file, run

from logitnet.data import DataError
from logitnet.distribution import tables
from logitnet.models import load_model


def _frames(seed: int = 0, files: int = 3, rows: int = 700) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(files):
        x = rng.normal(size=(rows, 4)) * [1.0, 3.0, 0.5, 10.0] + [0.0, 5.0, -2.0, 100.0]
        score = x[:, 0] + (x[:, 1] - 5) / 3
        frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
        frame["kind"] = np.where(score > 0.5, "high", np.where(score < -0.5, "low", "mid"))
        frame["tall"] = (x[:, 2] > -2).astype(np.int64)
        frame["wide"] = (x[:, 3] > 100).astype(np.int64)
        out.append(frame)
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli_dask")
    (folder / "pq").mkdir()
    (folder / "csv").mkdir()
    for i, frame in enumerate(_frames()):
        frame.to_parquet(folder / "pq" / f"part{i}.parquet")
        frame.to_csv(folder / "csv" / f"part{i}.csv", index=False, float_format="%.17g")
    return folder


def _error(result: subprocess.CompletedProcess, text: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("logitnet train: error: ") and text in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_parquet_glob_trains_streamed_and_the_model_serves_csv(work):
    result = run("train", "pq/*.parquet", "--target", "kind", "--epochs", "30", "--seed", "2", "--layers", "32",
                 "--out", "pq.logitnet", cwd=work)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Data: pq/*.parquet: 2100 samples, 6 features, 3 classes" in out
    assert "streamed through Dask (this process)" in out
    epochs = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert len(epochs) == 30 and all(line.endswith(" rows/s") for line in epochs)
    rate = int(epochs[-1].rsplit(" - ", 1)[1].split()[0].replace(",", ""))
    assert rate > 100
    assert float(out.split("Test accuracy: ")[1].split()[0]) > 0.9
    model = load_model(work / "pq.logitnet")
    assert model.metadata["class_names"] == ["high", "low", "mid"]
    assert model.metadata["feature_names"] == ["a", "b", "c", "d", "tall", "wide"]
    evaluation = run("evaluate", "pq.logitnet", "csv/part0.csv", cwd=work)
    assert evaluation.returncode == 0, evaluation.stderr
    assert float(evaluation.stdout.split("Evaluation accuracy: ")[1].split()[0]) > 0.9


def test_csv_and_parquet_globs_of_the_same_rows_train_the_same_weights(work):
    for name, data in (("a.logitnet", "pq/*.parquet"), ("b.logitnet", "csv/*.csv"), ("c.logitnet", "pq")):
        result = run("train", data, "--target", "kind", "--epochs", "2", "--seed", "5", "--dtype", "float64",
                     "--quiet", "--out", name, cwd=work)
        assert result.returncode == 0, result.stderr
    a, b, c = (load_model(work / n) for n in ("a.logitnet", "b.logitnet", "c.logitnet"))
    np.testing.assert_array_equal(a.params, b.params)  # %.17g round-trips every float64
    np.testing.assert_array_equal(a.params, c.params)
    assert a.metadata["standardize"] == b.metadata["standardize"]


def test_the_split_takes_every_row_once_and_standardises_on_the_training_rows(work):
    raw = pd.concat(_frames()).drop(columns=["kind"]).to_numpy()
    table = tables.read(str(work / "pq" / "*.parquet"), target="kind", targets=None, seed=9, val_split=0.2,
                        test_split=0.25, dtype="float64")
    assert table.feature_names == ["a", "b", "c", "d", "tall", "wide"]  # the columns but the target
    got = {w: table.parts[w][0].compute() * table.scale + table.mean for w in (tables.TRAIN, tables.VAL, tables.TEST)}
    assert {w: len(v) for w, v in got.items()} == table.counts
    every = np.concatenate(list(got.values()))
    np.testing.assert_allclose(np.sort(every, axis=0), np.sort(raw, axis=0), rtol=1e-13)
    train = got[tables.TRAIN]
    np.testing.assert_allclose(table.mean, train.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(table.scale, train.std(axis=0), rtol=1e-12)
    n = sum(table.counts.values())
    assert abs(table.counts[tables.TEST] / n - 0.25) < 0.05
    assert abs(table.counts[tables.VAL] / (n - table.counts[tables.TEST]) - 0.2) < 0.05
    # Labels are encoded as the in-memory reader orders them.
    y = table.parts[tables.TRAIN][1].compute()
    kinds = pd.concat(_frames())["kind"].to_numpy()
    assert table.class_names == ["high", "low", "mid"] and set(np.unique(y)) == {0, 1, 2}
    assert np.bincount(np.concatenate([table.parts[w][1].compute() for w in table.parts]), minlength=3).tolist() \
        == [int((kinds == k).sum()) for k in ("high", "low", "mid")]
    again = tables.read(str(work / "pq" / "*.parquet"), target="kind", targets=None, seed=9, val_split=0.2,
                        test_split=0.25, dtype="float64")
    np.testing.assert_array_equal(again.parts[tables.TEST][0].compute(), table.parts[tables.TEST][0].compute())


def test_multilabel_targets_from_parquet(work):
    (work / "ml").mkdir()
    for i, frame in enumerate(_frames(seed=1)):
        frame.drop(columns="kind").to_parquet(work / "ml" / f"part{i}.parquet")
    result = run("train", "ml/*.parquet", "--targets", "tall,wide", "--epochs", "10", "--seed", "1", "--quiet",
                 "--out", "ml.logitnet", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "2 labels (tall, wide)" in result.stdout
    assert float(result.stdout.split("subset accuracy: ")[1].split()[0]) > 0.9


def test_local_workers_and_a_scheduler_train_the_weights_of_one_process(work):
    from distributed import LocalCluster

    args = ["train", "pq/*.parquet", "--target", "kind", "--epochs", "2", "--seed", "4", "--dtype", "float64",
            "--batch-size", "64", "--quiet"]
    here = run(*args, "--out", "here.logitnet", cwd=work)
    assert here.returncode == 0, here.stderr
    workers = run(*args, "--workers", "2", "--out", "workers.logitnet", cwd=work)
    assert workers.returncode == 0, workers.stderr
    assert "streamed through Dask (2 local workers)" in workers.stdout
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        joined = run(*args, "--scheduler", cluster.scheduler_address, "--out", "joined.logitnet", cwd=work)
    assert joined.returncode == 0, joined.stderr
    assert f"the cluster at {cluster.scheduler_address}" in joined.stdout
    reference = load_model(work / "here.logitnet").params
    for name in ("workers.logitnet", "joined.logitnet"):
        np.testing.assert_allclose(load_model(work / name).params, reference, rtol=1e-12, atol=1e-15)


def test_an_unreachable_scheduler_is_a_one_line_error(work):
    start = time.monotonic()
    result = run("train", "pq/*.parquet", "--scheduler", "tcp://127.0.0.1:9", "--quiet", cwd=work, timeout=60)
    _error(result, "cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert time.monotonic() - start < 40


def test_a_killed_streamed_run_resumes_to_the_same_model_file(work):
    assert_a_killed_run_resumes_to_the_same_file(
        ["train", "pq/*.parquet", "--target", "kind", "--seed", "3", "--epochs", "40", "--layers", "128,128",
         "--batch-size", "16", "--quiet"], work)


def test_bad_files_are_named(work, tmp_path):
    _error(run("train", "none/*.parquet", cwd=work), "no files match none/*.parquet")
    _error(run("train", "pq/*.parquet", "--target", "colour", cwd=work),
           "no column named 'colour'; the columns are a, b, c, d, kind, tall, wide")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    frame = _frames(files=1)[0]
    frame.to_parquet(mixed / "a.parquet")
    frame.to_csv(mixed / "b.csv", index=False)
    _error(run("train", f"{mixed}/*", cwd=work), "all of one kind; found .csv, .parquet")
    text = tmp_path / "text"
    text.mkdir()
    frame.assign(c=frame["c"].astype(str) + "cm").to_parquet(text / "a.parquet")
    _error(run("train", str(text), "--target", "kind", cwd=work), "column 'c' holds")
    holes = tmp_path / "holes"
    holes.mkdir()
    frame.to_csv(holes / "a.csv", index=False)
    with_gap = frame.copy()
    with_gap.loc[7, "b"] = np.nan
    with_gap.to_csv(holes / "b.csv", index=False)
    _error(run("train", f"{holes}/*.csv", "--target", "kind", cwd=work),
           "partition 1, row 7, column 'b': missing value; features must be finite")
    one = tmp_path / "one"
    one.mkdir()
    frame.assign(kind="mid").to_parquet(one / "a.parquet")
    _error(run("train", str(one), "--target", "kind", cwd=work), "the target has a single class ('mid')")
    _error(run("train", "pq", "--targets", "kind,tall", cwd=work), "multi-label targets must be 0 or 1")
    np.savez(tmp_path / "d.npz", x=np.zeros((20, 2)), y=np.arange(20) % 2)
    _error(run("train", str(tmp_path / "d.npz"), "--workers", "2", cwd=work), "stream CSV or Parquet files, not .npz")
    _error(run("train", "--workers", "2", cwd=work), "--workers and --scheduler train on CSV or Parquet files")


def test_reading_a_table_checks_before_any_work(work):
    with pytest.raises(DataError, match="too few rows"):
        small = work / "small"
        small.mkdir(exist_ok=True)
        _frames(files=1, rows=6)[0].to_parquet(small / "a.parquet")
        tables.read(str(small), target="kind", targets=None, seed=0, val_split=0.1, test_split=0.2,
                    dtype="float32")
