"""One render worker for the whole server, batching whatever is waiting.

Gradio runs each event handler in its own thread. If every handler called the generator itself,
sixteen artists dragging sliders would run sixteen generator passes fighting over the same cores
(or GPU). Instead handlers `submit` a job and wait; a single worker thread takes *everything that
arrived while the previous batch ran*, groups jobs that can share a forward pass (same function,
same group key: e.g. same model and settings that are per-batch), and calls the batch function
once per group. Each caller gets its own result or its own exception: when a batch fails, its jobs
are retried one by one, so one visitor's bad input never fails another's request.

This is dynamic batching as inference servers do it; nothing waits on a timer, so a lone user
pays no latency for it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

BatchFn = Callable[[Hashable, Sequence[Any]], Sequence[Any]]


@dataclass
class _Job:
    fn: BatchFn
    key: Hashable
    item: Any
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class RenderQueue:
    """See module docs. `fn(key, items) -> results` must return one result per item, in order."""

    def __init__(self, max_batch: int = 16, name: str = "bender-render"):
        self.max_batch = max(1, int(max_batch))
        self._cond = threading.Condition()
        self._pending: list[_Job] = []
        self._thread: threading.Thread | None = None
        self._name = name
        self.batches_run = 0  # how many forward passes; the load test reports items per batch
        self.items_run = 0

    def submit(self, fn: BatchFn, key: Hashable, item: Any) -> Any:
        """Queue one item and block until its result is ready (re-raises its exception)."""
        return self.submit_many(fn, [(key, item)])[0]

    def submit_many(self, fn: BatchFn, keyed_items: Sequence[tuple[Hashable, Any]]) -> list[Any]:
        """Queue several (key, item) pairs at once; block until all are done (first error re-raised)."""
        jobs = [_Job(fn, key, item) for key, item in keyed_items]
        if not jobs:
            return []
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
                self._thread.start()
            self._pending.extend(jobs)
            self._cond.notify()
        for job in jobs:
            job.done.wait()
        for job in jobs:
            if job.error is not None:
                raise job.error
        return [job.result for job in jobs]

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                jobs, self._pending = self._pending, []
            groups: OrderedDict[tuple, list[_Job]] = OrderedDict()  # bound methods compare by (func, self)
            for job in jobs:
                groups.setdefault((job.fn, job.key), []).append(job)
            for group in groups.values():
                for start in range(0, len(group), self.max_batch):
                    self._run(group[start:start + self.max_batch])

    def _run(self, jobs: list[_Job]) -> None:
        fn, key = jobs[0].fn, jobs[0].key
        try:
            results = list(fn(key, [j.item for j in jobs]))
            if len(results) != len(jobs):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(jobs)} items")
            self.batches_run += 1
            self.items_run += len(jobs)
        except BaseException as e:  # handed to the waiting caller(s)
            if len(jobs) > 1:
                for job in jobs:
                    self._run([job])
                return
            jobs[0].error = e
            jobs[0].done.set()
            return
        for job, result in zip(jobs, results):
            job.result = result
            job.done.set()
