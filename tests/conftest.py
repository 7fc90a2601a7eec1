"""Fixtures shared by several test files."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def dask_cluster_client() -> Iterator[Any]:
    """One multi-process ``distributed.LocalCluster`` (two workers, one thread each) and its
    client for the whole test session: starting a cluster takes seconds, and every Dask test
    file needs the same one. Skipped where the ``dask`` extra is not installed."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       dashboard_address=None, memory_limit="2GiB")
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.fixture(scope="module")
def client(request: pytest.FixtureRequest, dask_cluster_client: Any) -> Any:
    """The session's Dask client, with the requesting test module's own functions pickled by
    value for the workers (tests/ is not a package, so they cannot import it)."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(request.module)
    return dask_cluster_client
