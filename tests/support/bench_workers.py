"""A benchmark worker in a thread of the test process, for the queue's tests."""

from __future__ import annotations

import threading

from trimkit.measure import remote as bq


class ThreadWorker:
    """``bq.serve`` (what ``trimkit bench-worker`` runs) in a thread of the test process."""

    def __init__(self, url: str, device: str, backend: str = "onnxruntime", heartbeat_s: float = 5.0) -> None:
        self.events: list[bq.WorkerEvent] = []
        self.stop = threading.Event()
        ready = threading.Event()

        def on_event(event: bq.WorkerEvent) -> None:
            self.events.append(event)
            if event.kind == "ready":
                ready.set()

        self.thread = threading.Thread(target=bq.serve, args=(url,), daemon=True, kwargs=dict(
            device_name=device, backend=backend, threads=1, heartbeat_s=heartbeat_s, on_event=on_event,
            stop=self.stop))
        self.thread.start()
        assert ready.wait(60), "the worker did not start"

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
