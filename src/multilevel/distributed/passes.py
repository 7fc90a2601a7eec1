"""A pass over the partitions: one task per partition, the partial results added pairwise in a
tree on the workers (so one result of the size of the levels reaches the client), tasks retried
when a worker dies, and a pass that still fails raised as
:class:`~multilevel.errors.DistributedComputeError`.

The exact fit (:mod:`~multilevel.distributed.lmer`) builds each pass as a task graph over the
partitions read afresh; the moments fit (:mod:`~multilevel.distributed.moments`) submits its
many passes as futures over partitions it holds on the workers. Both build the tree, find the
scheduler and treat a lost worker here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from multilevel.errors import DataError, DistributedComputeError, MultilevelError

# Times a task is rerun when the worker running it dies (distributed's ``retries``).
RETRIES = 3
# Partial results added per reduction task: a tree of depth log_8(partitions).
TREE_WIDTH = 8


def active_client() -> Any | None:
    """The active ``distributed.Client``, or None (then Dask's default scheduler runs the
    pass, in this process)."""
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):  # not installed; no client started
        return None


def tree_reduce(items: list[Any], combine: Callable[..., Any],
                node: Callable[..., Any]) -> Any:
    """``items`` (one per partition) reduced by ``combine`` in a tree of width
    ``TREE_WIDTH``; ``node(combine, *children)`` makes each inner task (a delayed call or a
    submitted future), so the additions run where the children are."""
    if not items:
        raise DataError("the Dask DataFrame has no partitions")
    while len(items) > 1:
        items = [node(combine, *items[i:i + TREE_WIDTH])
                 for i in range(0, len(items), TREE_WIDTH)]
    return items[0]


@contextmanager
def lost_workers_fail_the_pass() -> Iterator[None]:
    """Around waiting for a pass's result: workers lost more often than the retries allow
    (``KilledWorker``, a dropped connection, a timeout) raise DistributedComputeError; a task
    is a pure function of its partition, so a retried pass gives the same answer or none."""
    try:
        yield
    except MultilevelError:
        raise
    except Exception as exc:
        from distributed import KilledWorker

        if isinstance(exc, KilledWorker | OSError | TimeoutError):
            raise DistributedComputeError(
                f"a pass over the partitions failed on the cluster ({type(exc).__name__}: "
                f"{exc}); workers were lost more often than the {RETRIES} retries allow. "
                "Check the workers' memory and logs, then fit again") from exc
        raise
