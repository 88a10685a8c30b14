"""Ordered parallel map over a process pool.

Results come back in input order whatever the number of workers, which is what makes a parallel
pack byte-identical to a serial one. Closing the generator early (max-images reached, Ctrl-C, an
error in the parent) terminates the workers at once.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator

from bender.dataset.sources import Item
from bender.dataset.worker import Result, WorkerConfig, init_worker, process, process_in_worker


def available_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's core count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _context() -> multiprocessing.context.BaseContext:
    # fork is fastest (workers inherit imports) but unsafe once torch has started its threads, as
    # when `bender demo` packs a dataset before training; forkserver avoids that on POSIX.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("forkserver" if "torch" in sys.modules else "fork")
    return multiprocessing.get_context("spawn")


def ordered_map(items: list[Item], config: WorkerConfig, jobs: int) -> Iterator[Result]:
    jobs = max(1, min(jobs, len(items)))
    if jobs == 1:
        for item in items:
            yield process(item, config)
        return
    # Small chunks keep the workers evenly loaded (image sizes vary a lot); 8 per chunk at most
    # bounds how much finished-but-unwritten work a Ctrl-C throws away.
    chunksize = max(1, min(8, len(items) // (jobs * 8)))
    pool = _context().Pool(jobs, initializer=init_worker, initargs=(config,))
    try:
        yield from pool.imap(process_in_worker, items, chunksize)
        pool.close()
        pool.join()
    finally:
        pool.terminate()
