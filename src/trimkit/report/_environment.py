"""Where timings were taken: the environment records that measure and compare stages log
(CPU, instruction sets, threads, load, library versions)."""

from __future__ import annotations

from trimkit.report._folder import ReportRun
from trimkit.report._markup import count, esc, figure, general, note, table, text
from trimkit.report._source import Ref, is_finite


def environments(run: ReportRun) -> list[tuple[str, Ref]]:
    """(where, environment record) for each measure stage and each comparison."""
    found = []
    for position, record in enumerate(run.records):
        details = run.ref(position).get("details")
        if details is None:
            continue
        environment = details.get("environment")
        if environment is not None and environment.is_dict:
            found.append((f"{record.index}. {record.stage}", environment))
        comparisons = details.get("comparisons")
        for comparison in comparisons.children() if comparisons is not None else []:
            env = comparison.at("models", 0, "latency", "env")
            batch = comparison.at("models", 0, "latency", "batch_size")
            if env is not None and env.is_dict:
                where = f"{record.index}. {record.stage}" + (f", batch {batch.value}" if batch is not None else "")
                found.append((where, env))
    return found


def environment_block(run: ReportRun) -> str:
    """A table with a column per environment record, and a warning where the CPUs were
    busy enough to make the timings noisy."""
    found = environments(run)
    if not found:
        return ""
    head = ["", *(esc(where) for where, _ in found)]
    rows = [("CPU", *(text(env.get("cpu")) for _, env in found)),
            ("CPUs available", *(figure(env.get("cpus_available"), count) for _, env in found)),
            ("instruction sets", *(_isa(env.get("isa")) for _, env in found)),
            ("threads timed", *(figure(env.get("threads"), count) for _, env in found)),
            ("CPUs busy with other work at start",
             *(figure(env.get("busy_cpus_at_start"), general) for _, env in found)),
            ("load average (1 min)", *(figure(env.get("load_average_1m"), general) for _, env in found)),
            ("platform", *(text(env.get("platform")) for _, env in found))]
    libraries: list[str] = []
    for _, env in found:
        versions = env.get("versions")
        libraries += [name for name, _ in (versions.items() if versions is not None else []) if name not in libraries]
    for name in libraries:
        rows.append((esc(name), *(text(env.at("versions", name)) for _, env in found)))
    warnings = [_busy_warning(where, env) for where, env in found]
    return table(head, rows, "l" + "l" * len(found), "environment") + "".join(w for w in warnings if w)


def _isa(isa: Ref | None) -> str:
    if isa is None or not isa.is_dict:
        return text(None)
    present = [name for name, flag in isa.value.items() if flag is True]
    return esc(", ".join(present) or "none of those recorded")


def _busy_warning(where: str, env: Ref) -> str:
    busy, threads, cpus = (env.get(k) for k in ("busy_cpus_at_start", "threads", "cpus_available"))
    if not all(ref is not None and is_finite(ref.value) for ref in (busy, threads, cpus)):
        return ""
    if busy.value + threads.value <= cpus.value + 0.25:
        return ""
    return note(f"{esc(where)}: other processes kept {figure(busy, general)} of {figure(cpus, count)} CPUs busy while "
                f"{figure(threads, count)} thread(s) were timed; threads waited for CPUs, so those timings are noisy.",
                "warn")
