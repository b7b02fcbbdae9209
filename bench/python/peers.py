#!/usr/bin/env python3
"""Benchmark the Python peers of orchflow (Orchflow 0.5 and LangGraph).

Run as:

    .venv-peer/bin/python bench/python/peers.py [--quick] [--dir DIR] [--postgres URL]

Prints ONE JSON object on stdout and nothing else; progress and a human-readable
table go to stderr.  See bench/python/README.md for setup and what each row means.

Workloads (every step is trivial: it takes an int and returns it + 1):

* seq100     - 100 sequential steps; ns per step (run time / 100).
* fanout100  - one step fanning out to 100 parallel branches, then joined;
               ns per branch (run time / 100, the start and join steps included).
* durableN   - N sequential steps with the peer's on-disk checkpointing; ns per step.
* durable10x1000 - 1,000 concurrent runs (threads) of 10 steps each, in one event loop, on
               one async saver (AsyncSqliteSaver; AsyncPostgresSaver with --postgres);
               ns per checkpointed step (wall time / 10,000).

The Postgres savers (langgraph-checkpoint-postgres) run only with --postgres URL (or env
ORCHFLOW_POSTGRES_URL); each run of peers.py uses a fresh schema, dropped at the end.

Each bench is run once untimed (warm-up), then timed repeatedly with
time.perf_counter_ns until a time budget is spent; per_unit_ns is the median run
time divided by the number of units, best_per_unit_ns the fastest run.
Async peers are driven from ONE event loop (one asyncio.run per system).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import json
import operator
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypedDict

perf = time.perf_counter_ns
RESULTS: list[dict[str, Any]] = []
SKIPPED: list[str] = []


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def version_of(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def wchar() -> int | None:
    """Bytes this process (all threads) has passed to write-like syscalls."""
    try:
        with open("/proc/self/io", encoding="ascii") as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Budget:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        # seconds of timed runs per bench, and bounds on the number of runs
        self.seconds = 0.3 if quick else 1.5
        self.durable_seconds = 0.5 if quick else 2.5
        self.min_runs = 3 if quick else 10
        self.max_runs = 100_000
        # durable1000 for Orchflow: only tried if it is predicted to finish in time,
        # and aborted (by a deadline checked inside the steps) if it does not
        self.durable1000_limit_s = 20.0 if quick else 30.0
        # durable10x1000 (1,000 concurrent runs of 10 steps): one batch takes ~10-30 s, so the
        # warm-up is a batch of 10 runs and the timed batches are few
        self.concurrent_runs = 1000
        self.concurrent_steps = 10
        self.concurrent_warmup_runs = 10
        self.concurrent_timed_batches = 1 if quick else 2


def record(
    system: str,
    bench: str,
    unit: str,
    units: int,
    samples: list[int],
    note: str,
    **extra: Any,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "system": system,
        "bench": bench,
        "per_unit_ns": round(statistics.median(samples) / units, 1),
        "unit": unit,
        "runs": len(samples),
        "note": note,
        "best_per_unit_ns": round(min(samples) / units, 1),
    }
    row.update(extra)
    RESULTS.append(row)
    log(
        f"  {system:<23} {bench:<14} {row['per_unit_ns']:>14,.1f} ns/{unit}"
        f"  (best {row['best_per_unit_ns']:,.1f}, {len(samples)} runs)"
    )
    return row


async def time_async(
    run_once: Callable[[], Awaitable[Any]],
    check: Callable[[Any], None],
    seconds: float,
    budget: Budget,
) -> list[int]:
    """Warm up once (untimed, result checked), then time runs for `seconds`."""
    check(await run_once())
    samples: list[int] = []
    end = perf() + int(seconds * 1e9)
    while len(samples) < budget.min_runs or (
        perf() < end and len(samples) < budget.max_runs
    ):
        t0 = perf()
        await run_once()
        samples.append(perf() - t0)
    return samples


def time_sync(
    run_once: Callable[[], Any],
    check: Callable[[Any], None],
    seconds: float,
    budget: Budget,
) -> list[int]:
    check(run_once())
    samples: list[int] = []
    end = perf() + int(seconds * 1e9)
    while len(samples) < budget.min_runs or (
        perf() < end and len(samples) < budget.max_runs
    ):
        t0 = perf()
        run_once()
        samples.append(perf() - t0)
    return samples


def expect(value: Any) -> Callable[[Any], None]:
    def check(got: Any) -> None:
        if got != value:
            raise AssertionError(f"expected {value!r}, got {got!r}")

    return check


# --------------------------------------------------------------------------------------
# Orchflow 0.5 (PyPI `orchflow`): Flow([...]).run(input), async steps
# --------------------------------------------------------------------------------------


class _Deadline(Exception):
    pass


def orchflow_bench(budget: Budget, workdir: str) -> None:
    import orchflow
    from orchflow import Flow, JsonCheckpointStore, step

    system = "orchflow-py"
    ver = orchflow.__version__
    deadline = [0.0]  # perf_counter seconds; 0 = none (only durable1000 sets it)

    # Orchflow passes every step the ORIGINAL flow input; the previous step's
    # output is context.previous (None for the first step).  Async functions are
    # awaited on the loop; plain functions would go through asyncio.to_thread.
    def inc_step(name: str, with_deadline: bool = False):
        if with_deadline:

            async def inc(input: Any, context: Any) -> int:
                if time.perf_counter() > deadline[0]:
                    raise _Deadline(name)
                prev = context.previous
                return (input if prev is None else prev) + 1

        else:

            async def inc(input: Any, context: Any) -> int:
                prev = context.previous
                return (input if prev is None else prev) + 1

        return step(name=name)(inc)

    async def join_fn(input: Any, context: Any) -> int:
        return sum(context.previous.values())  # parallel group output: {name: output}

    def seq_flow(n: int, with_deadline: bool = False) -> Any:
        return Flow([inc_step(f"s{i}", with_deadline) for i in range(n)], name=f"seq{n}")

    trace_note = (
        "defaults kept: Orchflow 0.5 always records a StepTrace per step attempt "
        "(2 datetime.now + perf_counter, input/output kept) into FlowResult.traces, "
        "no event handler on Flow.run; async steps (sync ones would go through "
        "asyncio.to_thread)"
    )

    async def main() -> None:
        # seq100
        flow = seq_flow(100)

        async def run_seq() -> Any:
            r = await flow.run(0)
            return (r.output, len(r.traces))

        s = await time_async(run_seq, expect((100, 100)), budget.seconds, budget)
        record(system, "seq100", "step", 100, s, f"Flow of 100 async steps, Flow.run(0); {trace_note}")

        # fanout100: [start, [b0..b99], join]; a list inside the flow is a parallel
        # group run with asyncio.gather, its output a dict {step name: output}
        fan = Flow(
            [inc_step("start"), [inc_step(f"b{i}") for i in range(100)], step(name="join")(join_fn)],
            name="fanout100",
        )

        async def run_fan() -> Any:
            r = await fan.run(0)
            return (r.output, len(r.traces))

        s = await time_async(run_fan, expect((200, 102)), budget.seconds, budget)
        record(
            system, "fanout100", "branch", 100, s,
            "Flow([start, [100 steps] (parallel group, asyncio.gather), join]); "
            "run time / 100 incl. start and join steps; " + trace_note,
        )

        # durableN: Flow.run(0, checkpoint=JsonCheckpointStore(path)), a fresh file per run
        counter = [0]

        def fresh_store() -> Any:
            counter[0] += 1
            return JsonCheckpointStore(os.path.join(workdir, f"orchflow-{counter[0]}.json"))

        durable_note = (
            "Flow.run(0, checkpoint=JsonCheckpointStore(file)), a fresh file per run; "
            "after EVERY step the runner json-round-trips input/previous/state/all traces, "
            "then JsonCheckpointStore.save rebuilds the whole payload (incl. the WHOLE trace "
            "history), json-clones it again, writes it with json.dumps(indent=2, sort_keys=True) "
            "to <file>.tmp and os.replace()s it over <file>: one full rewrite per step, "
            "NO fsync (file or directory)"
        )
        best_run_ns: dict[int, int] = {}
        for n in (10, 100):
            flow_n = seq_flow(n)
            last_path = [""]

            async def run_durable(flow_n: Any = flow_n, n: int = n) -> Any:
                store = fresh_store()
                last_path[0] = str(store.path)
                r = await flow_n.run(0, checkpoint=store)
                return (r.output, len(r.traces))

            w0 = wchar()
            s = await time_async(run_durable, expect((n, n)), budget.durable_seconds, budget)
            w1 = wchar()
            size = os.path.getsize(last_path[0])
            extra: dict[str, Any] = {"checkpoint_file_bytes": size}
            if w0 is not None and w1 is not None:
                extra["bytes_written_per_run"] = round((w1 - w0) / (len(s) + 1))
            record(system, f"durable{n}", "step", n, s, durable_note, **extra)
            best_run_ns[n] = min(s)

        # durable1000: every save rewrites the whole history, so the per-step cost grows
        # at most linearly with the step count; 100 x (best durable100 run) is therefore
        # an upper bound for a durable1000 run.  Run it once if that bound fits the limit
        # (a deadline checked inside the steps aborts it anyway if the machine is slower).
        predicted_s = 100 * best_run_ns[100] / 1e9
        limit = budget.durable1000_limit_s
        if predicted_s > limit:
            msg = (f"durable1000 skipped: predicted up to {predicted_s:.1f} s "
                   f"(100 x best durable100 run) > {limit:.0f} s limit")
            log("  " + msg)
            SKIPPED.append(f"{system}: {msg}")
            return
        log(f"  (durable1000 predicted {predicted_s:.1f} s, limit {limit:.0f} s)")
        flow_k = seq_flow(1000, with_deadline=True)
        store = fresh_store()
        w0 = wchar()
        deadline[0] = time.perf_counter() + limit
        t0 = perf()
        r = await flow_k.run(0, checkpoint=store, raise_on_error=False)
        elapsed = perf() - t0
        w1 = wchar()
        if not r.success:
            msg = f"durable1000 aborted: did not finish within {limit:.0f} s (reached step {len(r.traces)})"
            log("  " + msg)
            SKIPPED.append(f"{system}: {msg}")
            return
        assert r.output == 1000 and len(r.traces) == 1000
        extra = {"checkpoint_file_bytes": os.path.getsize(store.path)}
        if w0 is not None and w1 is not None:
            extra["bytes_written_per_run"] = w1 - w0
        # marginal cost per step along the run, from the step start timestamps in the
        # traces (the gap between two steps' starts includes the previous save)
        starts = [t.started_at.timestamp() for t in r.traces]
        for lo, hi in ((0, 100), (450, 550), (900, 999)):
            extra[f"per_step_ns_steps_{lo + 1}_{hi + 1}"] = round(
                (starts[hi] - starts[lo]) / (hi - lo) * 1e9)
        record(
            system, "durable1000", "step", 1000, [elapsed],
            "single timed run, no separate warm-up (code paths warmed by durable10/100); "
            "each step also checks a deadline; per_step_ns_steps_A_B = marginal cost per step "
            "between steps A and B (from the traces' start timestamps); " + durable_note,
            **extra,
        )

    log(f"orchflow {ver}:")
    asyncio.run(main())


# --------------------------------------------------------------------------------------
# LangGraph: StateGraph, compile(), ainvoke (async nodes) / invoke (sync nodes)
# --------------------------------------------------------------------------------------


class SeqState(TypedDict):
    x: int


class FanState(TypedDict):
    x: int
    out: Annotated[list[int], operator.add]


async def lg_inc_async(state: SeqState) -> dict[str, int]:
    return {"x": state["x"] + 1}


async def lg_branch_async(state: FanState) -> dict[str, list[int]]:
    return {"out": [state["x"] + 1]}


async def lg_join_async(state: FanState) -> dict[str, int]:
    return {"x": sum(state["out"])}


def lg_inc_sync(state: SeqState) -> dict[str, int]:
    return {"x": state["x"] + 1}


def lg_branch_sync(state: FanState) -> dict[str, list[int]]:
    return {"out": [state["x"] + 1]}


def lg_join_sync(state: FanState) -> dict[str, int]:
    return {"x": sum(state["out"])}


def lg_seq_graph(n: int, node: Callable[..., Any], checkpointer: Any = None) -> Any:
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(SeqState)
    prev = START
    for i in range(n):
        g.add_node(f"n{i}", node)
        g.add_edge(prev, f"n{i}")
        prev = f"n{i}"
    g.add_edge(prev, END)
    return g.compile(checkpointer=checkpointer)


def lg_fan_graph(n: int, start: Callable[..., Any], branch: Callable[..., Any], join: Callable[..., Any]) -> Any:
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(FanState)
    g.add_node("start", start)
    g.add_edge(START, "start")
    names = [f"b{i}" for i in range(n)]
    for name in names:
        g.add_node(name, branch)
        g.add_edge("start", name)
    g.add_node("join", join)
    g.add_edge(names, "join")  # waits for all 100 branches
    g.add_edge("join", END)
    return g.compile()


# a 100-node chain takes 100+ supersteps; LangGraph's default recursion_limit is 25
LG_CONFIG = {"recursion_limit": 1000}
LG_SEQ_NOTE = (
    "StateGraph(TypedDict{{x:int}}) with 100 nodes chained by add_edge, compile() with no "
    "checkpointer, config only recursion_limit=1000 (the default 25 stops a 100-node chain); "
    "default settings otherwise (LangSmith tracing {tracing}, no callbacks)"
)
LG_FAN_NOTE = (
    "static fan-out: add_edge('start', b_i) for 100 nodes, each returning {{'out': [x+1]}} into "
    "an Annotated[list, operator.add] channel, then add_edge([b0..b99], 'join') (waits for all); "
    "one superstep runs the 100 branches{how}; run time / 100 incl. start and join"
)


def lg_durable_note(saver: str, sync_mode: str, how: str) -> str:
    return (
        f"{saver} on a file (one connection for all runs, a new thread_id per run), default "
        "durability='async' (the checkpoint of step k is written while step k+1 runs; the run "
        "waits for all writes before returning); per step it INSERTs the task's writes "
        "(writes table) and a checkpoint row (msgpack blob of channel values + versions of ALL "
        "channels, ~7 KB for this 100-node graph), each in its own commit; sqlite "
        f"journal_mode=WAL, synchronous={sync_mode} -> fdatasync of the WAL at every commit "
        f"(~2 per step); {how}"
    )


async def lg_concurrent_durable(
    system: str, saver: Any, saver_note: str, budget: Budget,
    wal_position: Callable[[], Awaitable[float]] | None = None, count_wchar: bool = False,
) -> None:
    """durable10x1000: `concurrent_runs` ainvoke calls of a 10-node chain gathered on one loop,
    all on the same saver, each with its own thread_id; per_unit_ns = batch wall time / (runs x steps)."""
    runs, steps = budget.concurrent_runs, budget.concurrent_steps
    gd = lg_seq_graph(steps, lg_inc_async, checkpointer=saver)

    async def batch(n: int) -> list[int]:
        cfgs = [{"recursion_limit": 1000, "configurable": {"thread_id": str(uuid.uuid4())}}
                for _ in range(n)]
        out = await asyncio.gather(*(gd.ainvoke({"x": 0}, c) for c in cfgs))
        return [r["x"] for r in out]

    expect([steps] * budget.concurrent_warmup_runs)(await batch(budget.concurrent_warmup_runs))
    samples: list[int] = []
    extra: dict[str, Any] = {}
    wal0 = await wal_position() if wal_position is not None else None
    w0 = wchar()
    for _ in range(budget.concurrent_timed_batches):
        gc.collect()
        t0 = perf()
        got = await batch(runs)
        samples.append(perf() - t0)
        expect([steps] * runs)(got)
    w1 = wchar()
    if count_wchar and w0 is not None and w1 is not None:  # a file saver: its writes are ours
        extra["bytes_written_per_batch"] = round((w1 - w0) / len(samples))
    if wal_position is not None:
        extra["wal_bytes_per_batch"] = round((await wal_position() - wal0) / len(samples))
    extra["concurrent_runs"] = runs
    record(
        system, f"durable{steps}x{runs}", "step", runs * steps, samples,
        f"{runs} concurrent runs of a {steps}-node chain (async nodes), asyncio.gather of "
        f"graph.ainvoke with a new thread_id each, in one event loop, all on ONE {saver_note}; "
        f"per_unit_ns = batch wall time / {runs * steps} checkpointed steps; warm-up: one batch of "
        f"{budget.concurrent_warmup_runs} runs (untimed), then {len(samples)} timed batch(es) "
        "(runs = batches); default durability='async'; the saver serialises its database "
        "calls with one lock (no batching of commits across runs)",
        **extra,
    )


def tracing_state() -> str:
    for var in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING"):
        if os.environ.get(var, "").lower() in ("1", "true"):
            return f"ON via {var}"
    return "off (env unset)"


def langgraph_async_bench(budget: Budget, workdir: str) -> None:
    system = "langgraph"
    tracing = tracing_state()

    async def main() -> None:
        g = lg_seq_graph(100, lg_inc_async)

        async def run_seq() -> Any:
            return (await g.ainvoke({"x": 0}, LG_CONFIG))["x"]

        s = await time_async(run_seq, expect(100), budget.seconds, budget)
        record(system, "seq100", "step", 100, s,
               "async nodes, await graph.ainvoke; " + LG_SEQ_NOTE.format(tracing=tracing))

        f = lg_fan_graph(100, lg_inc_async, lg_branch_async, lg_join_async)

        async def run_fan() -> Any:
            r = await f.ainvoke({"x": 0}, LG_CONFIG)
            return (r["x"], len(r["out"]))

        s = await time_async(run_fan, expect((200, 100)), budget.seconds, budget)
        record(system, "fanout100", "branch", 100, s,
               "async nodes, await graph.ainvoke; "
               + LG_FAN_NOTE.format(how=" as asyncio tasks on the one loop"))

        try:
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
        except ImportError as exc:
            msg = f"durable100 omitted: langgraph-checkpoint-sqlite/aiosqlite not importable ({exc})"
            log("  " + msg)
            SKIPPED.append(f"{system}: {msg}")
            return
        path = os.path.join(workdir, "langgraph-async.sqlite")
        async with AsyncSqliteSaver.from_conn_string(path) as saver:
            await saver.setup()
            async with saver.conn.execute("PRAGMA synchronous") as cur:
                sync_mode = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(
                    (await cur.fetchone())[0], "?")
            gd = lg_seq_graph(100, lg_inc_async, checkpointer=saver)

            async def run_durable() -> Any:
                cfg = {"recursion_limit": 1000, "configurable": {"thread_id": str(uuid.uuid4())}}
                return (await gd.ainvoke({"x": 0}, cfg))["x"]

            w0 = wchar()
            s = await time_async(run_durable, expect(100), budget.durable_seconds, budget)
            w1 = wchar()
            extra: dict[str, Any] = {}
            if w0 is not None and w1 is not None:
                extra["bytes_written_per_run"] = round((w1 - w0) / (len(s) + 1))
            record(system, "durable100", "step", 100, s,
                   lg_durable_note("AsyncSqliteSaver (aiosqlite, its own thread)", sync_mode,
                                   "async nodes, await graph.ainvoke"),
                   **extra)

            await lg_concurrent_durable(
                system, saver,
                f"AsyncSqliteSaver (aiosqlite, one connection on its own thread; sqlite "
                f"journal_mode=WAL, synchronous={sync_mode}: one fdatasync of the WAL per commit)",
                budget, count_wchar=True)

    log(f"langgraph {version_of('langgraph')} (async API):")
    asyncio.run(main())


def langgraph_sync_bench(budget: Budget, workdir: str) -> None:
    system = "langgraph-sync"
    tracing = tracing_state()
    log(f"langgraph {version_of('langgraph')} (sync API):")

    g = lg_seq_graph(100, lg_inc_sync)
    s = time_sync(lambda: g.invoke({"x": 0}, LG_CONFIG)["x"], expect(100), budget.seconds, budget)
    record(system, "seq100", "step", 100, s,
           "sync nodes, graph.invoke; " + LG_SEQ_NOTE.format(tracing=tracing))

    f = lg_fan_graph(100, lg_inc_sync, lg_branch_sync, lg_join_sync)

    def run_fan() -> Any:
        r = f.invoke({"x": 0}, LG_CONFIG)
        return (r["x"], len(r["out"]))

    s = time_sync(run_fan, expect((200, 100)), budget.seconds, budget)
    record(system, "fanout100", "branch", 100, s,
           "sync nodes, graph.invoke; "
           + LG_FAN_NOTE.format(how=" on LangGraph's thread pool (sync nodes)"))

    try:
        from langgraph.checkpoint.sqlite import SqliteSaver
    except ImportError as exc:
        msg = f"durable100 omitted: langgraph-checkpoint-sqlite not importable ({exc})"
        log("  " + msg)
        SKIPPED.append(f"{system}: {msg}")
        return
    path = os.path.join(workdir, "langgraph-sync.sqlite")
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        saver = SqliteSaver(conn)
        saver.setup()
        sync_mode = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(
            conn.execute("PRAGMA synchronous").fetchone()[0], "?")
        gd = lg_seq_graph(100, lg_inc_sync, checkpointer=saver)

        def run_durable() -> Any:
            cfg = {"recursion_limit": 1000, "configurable": {"thread_id": str(uuid.uuid4())}}
            return gd.invoke({"x": 0}, cfg)["x"]

        w0 = wchar()
        s = time_sync(run_durable, expect(100), budget.durable_seconds, budget)
        w1 = wchar()
        extra: dict[str, Any] = {}
        if w0 is not None and w1 is not None:
            extra["bytes_written_per_run"] = round((w1 - w0) / (len(s) + 1))
        record(system, "durable100", "step", 100, s,
               lg_durable_note("SqliteSaver (sqlite3)", sync_mode, "sync nodes, graph.invoke"),
               **extra)
    finally:
        conn.close()


# --------------------------------------------------------------------------------------
# LangGraph with langgraph-checkpoint-postgres: PostgresSaver / AsyncPostgresSaver (psycopg 3)
# --------------------------------------------------------------------------------------

PG_INFO: dict[str, Any] = {}  # server version and durability settings, for the JSON header


def pg_connect_kwargs() -> dict[str, Any]:
    # what PostgresSaver.from_conn_string / AsyncPostgresSaver.from_conn_string use
    from psycopg.rows import dict_row

    return {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}


@contextlib.contextmanager
def pg_schema(url: str) -> Any:
    """A fresh schema for one system's tables, dropped (with everything in it) afterwards,
    so repeated runs never grow a table.  Its name starts with orchflow_bench_."""
    import psycopg

    schema = f"orchflow_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        if not PG_INFO:
            for key in ("server_version", "synchronous_commit", "fsync", "wal_sync_method",
                        "full_page_writes"):
                PG_INFO[key] = admin.execute(f"SHOW {key}").fetchone()[0]
        try:
            yield schema
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


# the server's current WAL position in bytes (server-wide)
PG_WAL_POSITION_SQL = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::float8 AS b"


def pg_durable_note(saver: str, how: str) -> str:
    return (
        f"{saver}, one autocommit connection as from_conn_string opens it (prepare_threshold=0, "
        "no pipeline arg), tables made by setup() in a fresh schema dropped after the system's "
        "benches; one saver for all runs, a new thread_id per run; default durability='async' "
        "(step k's checkpoint is written while step k+1 runs; the run waits for all writes "
        "before returning); per step put_writes (INSERT .. ON CONFLICT into checkpoint_writes) "
        "and put (non-primitive channel values UPSERTed into checkpoint_blobs, then the "
        "checkpoint as JSONB into checkpoints), each sent as one psycopg pipeline = its own "
        "implicit transaction and commit (pg_stat_database counted ~255 commits per 100-step run, "
        f"reads included); server synchronous_commit={PG_INFO.get('synchronous_commit')}, "
        f"fsync={PG_INFO.get('fsync')}, wal_sync_method={PG_INFO.get('wal_sync_method')} (a WAL "
        "flush per commit); wal_bytes_per_run = pg_current_wal_lsn() delta over the timed runs "
        f"/ runs (server-wide: other sessions' WAL counts too); {how}"
    )


def langgraph_postgres_sync_bench(budget: Budget, url: str) -> None:
    system = "langgraph-sync-postgres"
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg import Connection

    log(f"langgraph {version_of('langgraph')} (sync API), PostgresSaver "
        f"{version_of('langgraph-checkpoint-postgres')}, psycopg {version_of('psycopg')}:")
    with pg_schema(url) as schema, Connection.connect(url, **pg_connect_kwargs()) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        saver = PostgresSaver(conn)
        saver.setup()
        gd = lg_seq_graph(100, lg_inc_sync, checkpointer=saver)

        def run_durable() -> Any:
            cfg = {"recursion_limit": 1000, "configurable": {"thread_id": str(uuid.uuid4())}}
            return gd.invoke({"x": 0}, cfg)["x"]

        check = expect(100)
        check(run_durable())  # one warm-up run outside the WAL window (time_sync adds its own)
        wal0 = conn.execute(PG_WAL_POSITION_SQL).fetchone()["b"]
        s = time_sync(run_durable, check, budget.durable_seconds, budget)
        wal = conn.execute(PG_WAL_POSITION_SQL).fetchone()["b"] - wal0
        record(system, "durable100", "step", 100, s,
               pg_durable_note("PostgresSaver (psycopg 3 Connection, threading.Lock)",
                               "sync nodes, graph.invoke"),
               wal_bytes_per_run=round(float(wal) / (len(s) + 1)),
               postgres_server=PG_INFO.get("server_version"))


def langgraph_postgres_async_bench(budget: Budget, url: str) -> None:
    system = "langgraph-postgres"
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg import AsyncConnection

    async def main(schema: str) -> None:
        async with await AsyncConnection.connect(url, **pg_connect_kwargs()) as conn:
            await conn.execute(f'SET search_path TO "{schema}"')
            saver = AsyncPostgresSaver(conn)
            await saver.setup()

            async def wal_position() -> float:
                async with saver.lock:  # the saver's connection; do not interleave with it
                    cur = await conn.execute(PG_WAL_POSITION_SQL)
                    return (await cur.fetchone())["b"]
            gd = lg_seq_graph(100, lg_inc_async, checkpointer=saver)

            async def run_durable() -> Any:
                cfg = {"recursion_limit": 1000, "configurable": {"thread_id": str(uuid.uuid4())}}
                return (await gd.ainvoke({"x": 0}, cfg))["x"]

            check = expect(100)
            check(await run_durable())
            wal0 = await wal_position()
            s = await time_async(run_durable, check, budget.durable_seconds, budget)
            wal = await wal_position() - wal0
            record(system, "durable100", "step", 100, s,
                   pg_durable_note("AsyncPostgresSaver (psycopg 3 AsyncConnection, asyncio.Lock)",
                                   "async nodes, await graph.ainvoke"),
                   wal_bytes_per_run=round(wal / (len(s) + 1)),
                   postgres_server=PG_INFO.get("server_version"))

            await lg_concurrent_durable(
                system, saver,
                "AsyncPostgresSaver (one psycopg 3 AsyncConnection, asyncio.Lock around every "
                f"database call; server synchronous_commit={PG_INFO.get('synchronous_commit')}: "
                "a WAL flush per committing transaction, about 2 per step)",
                budget, wal_position)

    log(f"langgraph {version_of('langgraph')} (async API), AsyncPostgresSaver "
        f"{version_of('langgraph-checkpoint-postgres')}, psycopg {version_of('psycopg')}:")
    with pg_schema(url) as schema:
        asyncio.run(main(schema))


# --------------------------------------------------------------------------------------


def print_table(out: dict[str, Any]) -> None:
    log("")
    log(f"python {out['python']}  orchflow {out['orchflow']}  langgraph {out['langgraph']}"
        f"  ({'quick' if out['quick'] else 'full'} run, {out['cpus']} CPUs)")
    if out["postgres_server"]:
        log(f"langgraph-checkpoint-postgres {out['langgraph_checkpoint_postgres']}  psycopg "
            f"{out['psycopg']}  PostgreSQL {out['postgres_server'].get('server_version')}")
    hdr = f"{'system':<23} {'bench':<14} {'median ns/unit':>16} {'best ns/unit':>14} {'unit':<7} {'runs':>6}"
    log(hdr)
    log("-" * len(hdr))
    for r in out["results"]:
        log(f"{r['system']:<23} {r['bench']:<14} {r['per_unit_ns']:>16,.1f} "
            f"{r['best_per_unit_ns']:>14,.1f} {r['unit']:<7} {r['runs']:>6}")
    for s in out["skipped"]:
        log(f"skipped: {s}")
    log(f"load average (1 min) at start/end: {out['loadavg_1m_start_end']} on {out['cpus']} CPUs"
        " - other processes' load makes the numbers noisy")
    log(f"total wall time {out['wall_seconds']:.1f} s")


ALL_SYSTEMS = ["orchflow", "langgraph", "langgraph-sync", "langgraph-postgres", "langgraph-sync-postgres"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter time budgets (~30 s total)")
    ap.add_argument("--dir", default=None,
                    help="directory for checkpoint files (default: a fresh dir under the system temp dir)")
    ap.add_argument("--only", choices=ALL_SYSTEMS, action="append",
                    help="run only these systems (repeatable)")
    ap.add_argument("--postgres", metavar="URL", default=os.environ.get("ORCHFLOW_POSTGRES_URL"),
                    help="PostgreSQL connection URL for the langgraph-*postgres systems (default: env "
                         "ORCHFLOW_POSTGRES_URL; without it they are skipped). Each system makes a "
                         "fresh schema orchflow_bench_<hex> and drops it afterwards")
    args = ap.parse_args()
    budget = Budget(args.quick)
    wall0 = time.perf_counter()
    load0 = os.getloadavg()[0]

    real_stdout = sys.stdout
    workdir = tempfile.mkdtemp(prefix="peers-bench-", dir=args.dir)
    systems = args.only or ALL_SYSTEMS
    failed = False
    try:
        # Everything a library might print goes to stderr; stdout gets only the JSON.
        with contextlib.redirect_stdout(sys.stderr):
            log(f"checkpoint files under {workdir}")
            for name in systems:
                gc.collect()
                try:
                    if name == "orchflow":
                        orchflow_bench(budget, workdir)
                    elif version_of("langgraph") is None:
                        SKIPPED.append(f"{name}: langgraph not installed")
                        log(f"{name}: langgraph not installed, skipped")
                    elif name == "langgraph":
                        langgraph_async_bench(budget, workdir)
                    elif name == "langgraph-sync":
                        langgraph_sync_bench(budget, workdir)
                    elif not args.postgres:
                        SKIPPED.append(f"{name}: no PostgreSQL server given (--postgres URL or "
                                       "env ORCHFLOW_POSTGRES_URL)")
                        log(f"{name}: no --postgres URL / ORCHFLOW_POSTGRES_URL, skipped")
                    elif name == "langgraph-postgres":
                        langgraph_postgres_async_bench(budget, args.postgres)
                    else:
                        langgraph_postgres_sync_bench(budget, args.postgres)
                except ImportError as exc:
                    SKIPPED.append(f"{name}: not importable ({exc})")
                    log(f"{name}: not importable ({exc}), skipped")
                except Exception as exc:  # keep the other systems' rows, but fail
                    failed = True
                    SKIPPED.append(f"{name}: FAILED ({type(exc).__name__}: {exc})")
                    traceback.print_exc()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    out = {
        "python": platform.python_version(),
        "orchflow": version_of("orchflow"),
        "langgraph": version_of("langgraph"),
        "langgraph_checkpoint_sqlite": version_of("langgraph-checkpoint-sqlite"),
        "aiosqlite": version_of("aiosqlite"),
        "langgraph_checkpoint_postgres": version_of("langgraph-checkpoint-postgres"),
        "psycopg": version_of("psycopg"),
        "psycopg_binary": version_of("psycopg-binary"),
        "postgres_server": PG_INFO or None,
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "loadavg_1m_start_end": [load0, os.getloadavg()[0]],
        "results": RESULTS,
        "skipped": SKIPPED,
        "wall_seconds": round(time.perf_counter() - wall0, 1),
    }
    print_table(out)
    real_stdout.write(json.dumps(out) + "\n")
    real_stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
