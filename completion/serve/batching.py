"""Micro-batching for the completion server: requests that arrive while the model is busy are
generated together in one left-padded batch (grouped by sampling settings)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from completion.backends.base import GenerationRequest
from completion.backends.transformers_backend import TransformersBackend


@dataclass
class _Job:
    req: GenerationRequest
    future: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Batcher:
    """One worker task feeds the model; `submit()` waits for its request's text."""

    def __init__(self, backend: TransformersBackend, max_batch: int = 8) -> None:
        self.backend = backend
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        # batches: generated; cancelled: stopped because every caller had gone; abandoned_tokens:
        # tokens generated for callers that had gone (the cost of noticing late).
        self.stats = {"batches": 0, "cancelled": 0, "abandoned_tokens": 0}

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def submit(self, req: GenerationRequest) -> str:
        job = _Job(req)
        await self._queue.put(job)
        return await job.future

    async def _run(self) -> None:
        while True:
            jobs = [await self._queue.get()]
            while not self._queue.empty() and len(jobs) < 4 * self.max_batch:
                jobs.append(self._queue.get_nowait())
            jobs = [j for j in jobs if not j.future.done()]  # callers that went away
            groups: dict[tuple[float, float], list[_Job]] = {}
            for job in jobs:
                groups.setdefault((job.req.temperature, job.req.top_p), []).append(job)
            for group in groups.values():
                for i in range(0, len(group), self.max_batch):
                    await self._generate(group[i : i + self.max_batch])

    async def _generate(self, jobs: list[_Job]) -> None:
        cancel = threading.Event()

        def left(_: object) -> None:
            # A caller's future is cancelled when its client goes (see asgi.unless_gone);
            # once nobody waits for the batch the model stops at its next token.
            if all(j.future.done() for j in jobs):
                cancel.set()

        for job in jobs:
            job.future.add_done_callback(left)
        try:
            texts = await asyncio.to_thread(self.backend.run_batch, [j.req for j in jobs], cancel)
        except asyncio.CancelledError:
            cancel.set()
            raise
        except Exception as exc:
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        finally:
            for job in jobs:
                job.future.remove_done_callback(left)
        self.stats["batches"] += 1
        self.stats["cancelled"] += cancel.is_set()
        tok = self.backend.tokenizer
        for job, text in zip(jobs, texts, strict=True):
            if job.future.done():
                self.stats["abandoned_tokens"] += len(tok(text, add_special_tokens=False)["input_ids"])
            else:
                job.future.set_result(text)
