"""The pass machinery shared by the exact and the moments Dask fits
(multilevel.distributed.passes), without a cluster: the reduction tree, and a pass whose
workers were lost becoming DistributedComputeError (a typed multilevel error, never the
InternalError net or a different answer)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from multilevel import errors
from multilevel.distributed.passes import (
    TREE_WIDTH,
    lost_workers_fail_the_pass,
    tree_reduce,
)
from multilevel.errors import DataError, DistributedComputeError, MultilevelError

distributed = pytest.importorskip("distributed")


def test_tree_adds_every_item_in_nodes_of_at_most_tree_width() -> None:
    widths: list[int] = []

    def node(func, *children):
        widths.append(len(children))
        return func(*children)

    items = list(range(1, 70))
    assert tree_reduce(items, lambda *xs: sum(xs), node) == sum(items)
    assert max(widths) <= TREE_WIDTH
    # 69 items -> 9 nodes -> 2 nodes -> 1: depth log_8
    assert len(widths) == 9 + 2 + 1
    assert tree_reduce([5], lambda *xs: sum(xs), node) == 5
    with pytest.raises(DataError, match="no partitions"):
        tree_reduce([], lambda *xs: sum(xs), node)


# KilledWorker's message names the last worker's address
DEAD_WORKER = SimpleNamespace(address="tcp://10.0.0.2:1")


@pytest.mark.parametrize("lost", [distributed.KilledWorker("task", DEAD_WORKER, 3),
                                  OSError("connection closed"), TimeoutError("timed out")])
def test_lost_workers_are_distributed_compute_error(lost: Exception) -> None:
    with pytest.raises(DistributedComputeError, match="retries allow") as info:
        with lost_workers_fail_the_pass():
            raise lost
    assert info.value.__cause__ is lost
    assert isinstance(info.value, MultilevelError | RuntimeError)


def test_other_failures_pass_through_unchanged() -> None:
    with pytest.raises(ZeroDivisionError):  # a bug stays a bug (the API's net names it)
        with lost_workers_fail_the_pass():
            raise ZeroDivisionError("x")
    with pytest.raises(DataError):  # our own errors are not rewrapped
        with lost_workers_fail_the_pass():
            raise DataError("bad data")


def test_the_error_lives_with_the_others() -> None:
    assert errors.DistributedComputeError is DistributedComputeError
    assert issubclass(DistributedComputeError, MultilevelError)
