"""Beyond one machine, on Dask (`pip install "logitnet[dask]"`): `model.fit` on Dask arrays and
DataFrames streams their blocks; `set_distribution(DataParallel(client=client))` trains across a
cluster. Importing `logitnet` never imports this package or Dask."""

from .api import DataParallel, Streaming, distribution, set_distribution

__all__ = ["DataParallel", "Streaming", "distribution", "set_distribution"]
