"""`trimkit bench-worker`: the benchmark worker that runs on the device whose latency counts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from trimkit._urls import hide_password
from trimkit.cli._console import console
from trimkit.measure import remote


def bench_worker_command(
    queue: Annotated[str, typer.Option(help="The queue's PostgreSQL URL: postgresql://USER:PASSWORD@HOST:PORT/DB.")],
    device_name: Annotated[str, typer.Option(help="This device's queue name; producers send its jobs there.")],
    backend: Annotated[str, typer.Option(help="Runtime the jobs are timed on: onnxruntime or openvino.")] =
    "onnxruntime",
    threads: Annotated[int | None, typer.Option(
        help="Threads when a job does not say (default: the CPUs this process may use).")] = None,
    heartbeat: Annotated[float, typer.Option(
        help="Seconds a job may go without its worker's heartbeat before another worker measures it again "
             "(the same on every worker of a queue).")] = remote.DEFAULT_HEARTBEAT_S,
) -> None:
    """Measure the ONNX files producers queue for this device, one at a time, until Ctrl-C or SIGTERM."""

    def report(event: remote.WorkerEvent) -> None:
        job = f"{escape(event.label)} (request {event.request_id})"
        if event.kind == "ready":
            console.print(f"bench-worker {device_name}: serving queue {device_name!r} on {backend} at "
                          f"{hide_password(queue)}; Ctrl-C stops after the job in hand")
        elif event.kind == "start":
            again = "" if event.attempt == 1 else f" (attempt {event.attempt}: a worker stopped mid-job)"
            console.print(f"measuring {job}{again}")
        elif event.kind == "done" and event.record is not None:
            record = event.record
            console.print(f"measured {job}: p50 {record.latency_ms:.4f} ms, batch {record.batch_size}, "
                          f"{record.threads} thread{'' if record.threads == 1 else 's'}, {record.precision}, "
                          f"{record.iterations:,} calls")
        elif event.kind == "done":
            console.print(f"timed {job}: its files interleaved")
        elif event.kind == "failed":
            console.print(f"[red]could not measure[/] {job}: {escape(event.error or '')}")
        elif event.kind == "dropped":
            console.print(f"dropped {job}: its producer stopped waiting")

    remote.serve(queue, device_name=device_name, backend=backend, threads=threads, heartbeat_s=heartbeat,
                      on_event=report)
    console.print(f"bench-worker {device_name}: stopped")
