"""Helpers for tests that take model files apart and put them back together, damaged."""

from __future__ import annotations

import io
import warnings
import zipfile

import pytest

from logitnet.models import load_model
from logitnet.saving import ModelFileError


def members(data: bytes) -> list[tuple[str, bytes]]:
    """The zip's (name, content) pairs, in order."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def make_zip(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of these (name, content) pairs, duplicates allowed."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names, on purpose
        with zipfile.ZipFile(buf, "w", method) as zf:
            for name, content in entries:
                zf.writestr(name, content)
    return buf.getvalue()


def replace(data: bytes, name: str, content: bytes | None) -> bytes:
    """The file with member `name` replaced (None: removed); other members kept in order."""
    return make_zip([(n, content if n == name else c) for n, c in members(data) if n != name or content is not None])


def load(tmp_path, data: bytes):
    """The model in the file of bytes `data` (written to tmp_path/m.logitnet)."""
    path = tmp_path / "m.logitnet"
    path.write_bytes(data)
    return load_model(path)


def refusal(tmp_path, data: bytes) -> str:
    """The reason a file is refused, after the loader's "<path> is not a readable ... file: "."""
    with pytest.raises(ModelFileError) as info:
        load(tmp_path, data)
    assert not info.value.unexpected, info.value.__cause__  # a check refused it, not a loader bug
    prefix = f"{str(tmp_path / 'm.logitnet')!r} is not a readable logitnet model file: "
    assert str(info.value).startswith(prefix)
    return str(info.value)[len(prefix):]
