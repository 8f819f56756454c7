"""Keras 3's distribution spelling: `set_distribution(DataParallel(client=client))`, then an
unchanged `model.fit(x_dask, y_dask)`."""

from __future__ import annotations

from typing import Any

_current: Any = None


class Streaming:
    """Train on Dask data in this process, block by block. `window` blocks at a time are shuffled
    together (rows visited: blocks permuted, rows permuted within each window)."""

    def __init__(self, window: int = 2) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive number of blocks, got {window!r}")
        self.window = window

    def __repr__(self) -> str:
        return f"{type(self).__name__}(window={self.window})"


class DataParallel(Streaming):
    """Data-parallel training on a Dask cluster. With sync_every=1 each global batch is split by the
    blocks its rows come from, each part's gradient is computed on the worker holding that block,
    and the gradients are summed in block order for one optimizer step on the driver: the weights
    do not depend on the number of workers. With sync_every=k > 1 (local SGD), each worker takes
    k steps on its share of k global batches, then weights and optimizer state are averaged."""

    def __init__(self, client: Any = None, sync_every: int = 1, window: int = 2, *, address: str | None = None,
                 timeout: float = 10.0) -> None:
        super().__init__(window)
        if isinstance(sync_every, bool) or not isinstance(sync_every, int) or sync_every < 1:
            raise ValueError(f"sync_every must be a positive number of steps, got {sync_every!r}")
        if address is not None:
            if client is not None:
                raise ValueError("give client= or address=, not both")
            client = _connect(address, timeout)
        if client is None:
            try:
                from distributed import default_client
            except ImportError:
                raise ImportError('DataParallel needs Dask distributed: pip install "logitnet[dask]"') from None
            try:
                client = default_client()
            except ValueError:
                raise ValueError("DataParallel found no Dask client: pass client=Client(address), or "
                                 "create one first") from None
        self.client = client
        self.sync_every = sync_every

    def __repr__(self) -> str:
        return f"DataParallel(client={self.client!r}, sync_every={self.sync_every}, window={self.window})"


def _connect(address: str, timeout: float) -> Any:
    """A Client for the scheduler at `address`, or ConnectionError after `timeout` seconds."""
    try:
        from distributed import Client
    except ImportError:
        raise ImportError('DataParallel needs Dask distributed: pip install "logitnet[dask]"') from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise ConnectionError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({err}); "
                              "check the address, and that the scheduler is running") from None


def set_distribution(value: Streaming | None) -> None:
    """Make `value` the distribution every later fit uses (None: train in memory as usual)."""
    global _current
    if value is not None and not isinstance(value, Streaming):
        raise TypeError(f"set_distribution expects a DataParallel (or None), got {type(value).__name__}")
    _current = value


def distribution() -> Streaming | None:
    """The distribution set by set_distribution, or None."""
    return _current
