"""Renders the latest-results block of bench/README.md from bench/results/*.json (run by
`make bench` after the benchmarks, so bench/README.md always shows the latest measured
numbers). It writes only bench/README.md, between its markers; the root README links there
and is never touched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BENCH_README = Path("bench") / "README.md"  # relative to the repository's root
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _n(value: float) -> str:
    return f"{value:,.0f}" if isinstance(value, int) or float(value).is_integer() else f"{value:,.2f}"


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _direct(wrapper: dict[str, Any]) -> str:
    if "direct" not in wrapper:  # results written before it was measured
        return ""
    return (f"; the same wrapper put on the handler at registration, without an interceptor, "
            f"{_n(wrapper['direct']['median_rps'])}/s ({wrapper['direct']['cpu_us_per_call']} µs), direct ÷ bare "
            f"{wrapper['direct_over_bare']}")


def _solana_py(each: dict[str, Any]) -> str:
    return f"solana-py's AsyncClient over httpx {each['solana_py']} µs, " if "solana_py" in each else ""


def _typed_client(each: dict[str, Any]) -> str:
    return (f"the services' typed client over it (`RpcClient`) {each['typed_client']} µs, "
            if "typed_client" in each else "")


def _get_vault_alone(wrapper: dict[str, Any]) -> str:
    if "get_vault" not in wrapper:  # results written before it was measured
        return ""
    gv = wrapper["get_vault"]
    return (f" GetVault served from memory as vault_manager serves it, alone in its process: "
            f"{_n(gv['median_rps'])}/s ({gv['cpu_us_per_call']} µs per call), "
            f"{wrapper['get_vault_over_bare']} × the bare echo in the same passes." + _in_process(wrapper))


def _in_process(wrapper: dict[str, Any]) -> str:
    if "in_process" not in wrapper:  # results written before it was measured
        return ""
    own, us = wrapper["in_process"], wrapper["in_process"]["us_per_call"]
    return (f" Of that, each server's own Python per call apart from gRPC (handler, wrapper, request parse, "
            f"answer serialization; in process, median of {own['passes']} passes of {_n(own['calls_per_pass'])} "
            f"calls): bare echo {us['bare_echo']} µs, wrapped echo {us['wrapped_echo']} µs, GetVault "
            f"{us['get_vault']} µs.")


def _machine_load(deposit_round: dict[str, Any], cores: str) -> str:
    if "machine_cores_busy" not in deposit_round:  # results written before these were recorded
        return ""
    return (f", {deposit_round['machine_cores_busy']:g} of {cores} busy (load generator "
            f"{deposit_round['load_generator_cpu_ms']:g} ms CPU per deposit)")


def render() -> str:
    mesh = _load("mesh")
    # the machine's cores as the mesh run recorded them (results written before it did: unnamed)
    count = (mesh or {}).get("machine_cores")
    cores, machine = (f"the {count} cores", f"{count} cores") if count else ("the cores", "its cores")
    lines = [f"Latest results in `bench/results/` (`make bench`; `python -m bench NAME` reruns one) on "
             f"this machine ({machine}; servers and load generators share them).", ""]
    cu = _load("program_cu")
    if cu:
        classic, ptoken = cu["classic_spl_token"], cu["p_token"]
        before = (cu.get("previous") or {}).get("instructions", {})
        lines += ["On-chain compute units (`program_cu.json`; vault / position_manager CU = that program's own "
                  "code; before = the code before issues 22/23, classic SPL Token):", "",
                  "| instruction | tx CU, classic SPL Token | before | tx CU, p-token | vault CU "
                  "| position_manager CU |",
                  "|---|---|---|---|---|---|",
                  f"| bare SPL Token `Transfer` (baseline) | {_n(classic['bare_token_transfer_cu'])} | "
                  f"{_n(cu.get('previous', {}).get('bare_token_transfer_cu', 0)) if before else '–'} | "
                  f"{_n(ptoken['bare_token_transfer_cu'])} | – | – |"]
        for name, row in classic["instructions"].items():
            p_cu = ptoken["instructions"][name]["transaction_cu"]
            earlier = _n(before[name][0]) if name in before else "–"
            pm_cu = row.get("position_manager_cu", 0)
            lines.append(f"| {name} | {_n(row['transaction_cu'])} | {earlier} | {_n(p_cu)} | "
                         f"{_n(row['vault_program_cu']) if row['vault_program_cu'] else '–'} | "
                         f"{_n(pm_cu) if pm_cu else '–'} |")
        lines += ["", f"* deposit ÷ bare transfer: {classic['deposit_ratio_to_bare_transfer']} with the classic "
                  f"program (target ≤ {cu['deposit_ratio_target']}: {_met(classic['deposit_ratio_target_met'])}); "
                  f"{ptoken['deposit_ratio_to_bare_transfer']} against p-token, whose transfer is cheaper than the "
                  "1,000 CU base cost of any CPI.",
                  f"* lock/unlock, vault CU: {_n(cu['lock_unlock_vault_cu'])} (target ≤ "
                  f"{_n(cu['lock_unlock_vault_cu_target'])}: {_met(cu['lock_unlock_target_met'])})."]
        batch = classic.get("max_settle_batch")
        if batch:
            lines.append(f"* the largest settle batch ({batch['pairs']} pairs, every vault absorbing a surplus and "
                         f"every pair serving an exit): {_n(batch['log_bytes'])} log bytes of the "
                         f"{_n(batch['log_limit'])} a transaction keeps ({_n(batch['log_bytes_per_pair'])} per pair), "
                         f"{batch['events']} events, truncated: {'yes' if batch['truncated'] else 'no'}.")
        lines.append("")
    net = _load("localnet")
    if net:
        http, ceiling = net["http"], net["litesvm_in_process"]
        lines += ["localnet (`localnet.json`): SPL Token transfers through `sendTransaction` with preflight, "
                  f"{net['in_flight']} in flight: {_n(http['send_tps'])}/s (p50 {http['send_p50_ms']} ms, p99 "
                  f"{http['send_p99_ms']} ms); LiteSVM in-process {_n(ceiling['tps'])}/s; ratio "
                  f"{net['ratio_http_to_in_process']}. Confirmation takes one {net['slot_ms']} ms slot (p50 "
                  f"{http['confirmed_p50_ms']} ms).", ""]
    rpc = _load("rpc_client")
    if rpc:
        each, together = rpc["client_cpu_us_per_call"], rpc["chain_client_concurrent"]
        lines += [f"RPC client (`rpc_client.json`): client CPU per {rpc['method']} against localnet, median of "
                  f"{rpc['passes']} passes of {_n(rpc['calls'])} calls in a row: " + _solana_py(each) + "aiohttp's "
                  f"client {each['aiohttp']} µs, the services' HTTP/1.1 client {each['http_client']} µs, "
                  + _typed_client(each) + "the chain client (solders' typed request over it, through the coalescer) "
                  f"{each['chain_client']} µs; the chain "
                  f"client with {together['in_flight']} calls in flight: {together['client_cpu_us_per_call']} µs per "
                  f"call, {together['round_trips_per_call']} round trips per call.", ""]
    idx = _load("indexer")
    if idx:
        ingest = idx["ingest"]
        lat = {r["commitment"]: r for r in idx["event_to_pubsub_latency"]}
        lines += ["Indexer (`indexer.json`):", "", "| measure | result | target |", "|---|---|---|",
                  f"| events written by the indexer's write pipeline | {_n(ingest['indexer_events_per_s'])}/s | – |",
                  f"| the same batches COPYed alone, one at a time (no vault or cursor writes) | "
                  f"{_n(ingest['batched_copy_events_per_s'])}/s | – |",
                  f"| one raw COPY of the same rows (the ceiling) | {_n(ingest['copy_events_per_s'])}/s | – |",
                  f"| ratio, median of {ingest['rounds']} rounds ({', '.join(map(str, ingest['ratio_per_round']))})"
                  f" | {ingest['ratio']} | ≥ {ingest['target_ratio']}: {_met(ingest['target_met'])} |"]
        small = idx.get("small_batches")
        if small:
            one, txn = small["one_statement"], small["transaction"]
            lines.append(f"| a one-event batch in one statement vs in a transaction (BEGIN, INSERT, UPSERT, COMMIT), "
                         f"CPU per batch, median of {small['passes']} passes of {_n(small['batches_per_pass'])} | "
                         f"client {one['client_cpu_us']} vs {txn['client_cpu_us']} µs, PostgreSQL backend "
                         f"{one['postgres_cpu_us']} vs {txn['postgres_cpu_us']} µs | – |")
        for commitment, row in lat.items():
            lines.append(f"| deposit → Redis pub/sub, indexer at {commitment} | p50 {row['p50_ms']} ms, p99 "
                         f"{row['p99_ms']} ms | – |")
        lines.append("")
    if mesh:
        lines += ["Mesh (`mesh.json`, the system in separate processes as `make up` runs it):", "",
                  "| measure | result | target |", "|---|---|---|"]
        cmp = mesh["get_vault_vs_echo"]
        for label, row, judged in (("driven by h2load (compiled HTTP/2 client)", cmp, True),
                                   ("driven by a Python grpc.aio client on the same cores", cmp.get("python_client"),
                                    False)):
            if not row:
                continue
            gv, echo = row["get_vault"], row["echo"]
            verdict = (f"≥ {cmp['target_ratio']:g} and p99 ≤ {cmp['target_p99_ms']:g} ms: "
                       f"{_met(row['targets_met'])}" if judged
                       else "– (the client's CPU is part of what it measures)")
            control = row.get("control")  # h2load only; results written before it have none
            control_text = (f"; a second bare echo, the control, {_n(control['peak_rps'])}/s = "
                            f"{control['ratio']} × the echo" if control else "")
            lines.append(f"| GetVault vs bare grpc.aio echo, {label}, highest rates over 1–32 callers | "
                         f"{_n(gv['peak_rps'])}/s vs {_n(echo['peak_rps'])}/s = {row['ratio']}; GetVault p99 "
                         f"{gv['knee']['p99_ms']} ms at {gv['knee']['concurrency']} callers (echo: p99 "
                         f"{echo['knee']['p99_ms']} ms at {echo['knee']['concurrency']}){control_text} | {verdict} |")
        dep = mesh["deposits_end_to_end"]
        for label, row, judged in (("submitted by bench/h2_unary.py (minimal HTTP/2 client)", dep, True),
                                   ("submitted by a Python grpc.aio client on the same cores",
                                    dep.get("python_client"), False)):
            if not row:
                continue
            if "client" not in dep:  # results written before the two clients
                label = "submitted by a Python grpc.aio client"
            per_round = "; ".join(f"{r['delivered']}/{dep['deposits_per_round']} delivered, p50 {r['p50_ms']} ms, "
                                  f"p99 {r['p99_ms']} ms" + _machine_load(r, cores) for r in row["rounds"])
            verdict = (f"median p99 {row['median_p99_ms']} ms ≤ {dep['target_p99_ms']:g} ms: {_met(row['target_met'])}"
                       if judged else f"median p99 {row['median_p99_ms']} ms (the client's CPU shares the cores)")
            lines.append(f"| deposits submit → indexed → WebSocket at {_n(dep['offered_rate'])}/s, {label}, "
                         f"{len(row['rounds'])} rounds | {per_round} | {verdict} |")
        pauses = dep.get("gc_pauses_during_rounds")
        if pauses:
            described = "; ".join(
                f"{name} {p['pauses']}, none over 10 ms, longest < {p['longest_under_ms']:g} ms"
                if p["pauses"] and not p["over_10ms"] else
                f"{name} {p['pauses']}, {p['over_10ms']} over 10 ms" if p["pauses"] else f"{name} none"
                for name, p in pauses.items())
            lines.append(f"| garbage-collector pauses during those rounds (`python_gc_pause_seconds`) | "
                         f"{described} | – |")
        cpu = dep.get("cpu_ms_per_deposit")
        if cpu:
            parts = ", ".join(f"{name} {value:g}" for name, value in cpu.items() if name != "total")
            lines.append(f"| CPU per deposit over those rounds, services and localnet (PostgreSQL, Redis and the "
                         f"load generator not counted) | {cpu['total']:g} ms ({parts}); "
                         f"{dep['cores_busy_during_rounds']:g} of {cores} busy | – |")
        shares = dep.get("main_thread_share_of_cpu")
        if shares:
            parts = ", ".join(f"{name} {value:g}" for name, value in shares.items())
            lines.append(f"| share of each process's CPU over those rounds used by its main (event-loop) thread | "
                         f"{parts} | – |")
        stores = dep.get("store_cpu_ms_per_deposit")
        if stores:
            parts = ", ".join(f"{name} {value:g}" for name, value in stores.items() if name != "total")
            lines.append(f"| CPU per deposit over those rounds, every PostgreSQL and Redis server process on this "
                         f"machine | {stores['total']:g} ms ({parts}) | – |")
        lines.append("")
    operator = _load("operator")
    if operator:
        op, sub = operator["operator"], operator["submit_transaction"]
        lines += [f"Matching-engine path (`operator.json`, {operator['callers']} callers, one trader each, at "
                  f"{operator['commitment']}): cpi_manager's Lock + Settle signed with the operator key "
                  f"{_n(op['calls_per_second'])} calls/s (Lock p99 {op['lock']['p99_ms']} ms, Settle p99 "
                  f"{op['settle']['p99_ms']} ms); SubmitTransaction of trader-signed deposits "
                  f"{_n(sub['calls_per_second'])}/s (p99 {sub['all']['p99_ms']} ms) in the same run.", ""]
    wrapper = _load("grpc_wrapper")
    if wrapper:
        bare, wrapped = wrapper["bare"], wrapper["wrapped"]
        lines += [f"gRPC wrapper (`grpc_wrapper.json`): a do-nothing handler bare {_n(bare['median_rps'])}/s "
                  f"({bare['cpu_us_per_call']} µs of server CPU per call), wrapped by the services' "
                  f"`ObservingInterceptor` {_n(wrapped['median_rps'])}/s ({wrapped['cpu_us_per_call']} µs); wrapped ÷ "
                  f"bare {wrapper['wrapped_over_bare']}" + _direct(wrapper) + f" (h2load, {wrapper['in_flight']} in "
                  f"flight, median of "
                  f"{wrapper['passes']} interleaved passes)." + _get_vault_alone(wrapper), ""]
    spool = _load("audit_spool")
    if spool:
        one, many = spool["one_at_a_time"], spool["32_in_flight"]
        lines += [f"Audit spool (`audit_spool.json`): journaling a submission's audit entry (a write and an fdatasync, "
                  f"median of {spool['median_of']} passes): one at a time p50 {one['p50_ms']} ms, p99 {one['p99_ms']} "
                  f"ms, {one['cpu_us_per_call']} µs of CPU per call; 32 in flight p50 {many['p50_ms']} ms, p99 "
                  f"{many['p99_ms']} ms, {many['cpu_us_per_call']} µs per call, {many['calls_per_sync']} calls per "
                  "sync.", ""]
    return "\n".join(lines)


def update_bench_readme(root: Path = ROOT) -> Path:
    """Writes the rendered block between the markers of `root`/bench/README.md (nothing else
    in that file, and no other file, changes); returns the path written."""
    readme = root / BENCH_README
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{BENCH_README} has no benchmark markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{render()}\n{END}{tail}")
    return readme


if __name__ == "__main__":
    update_bench_readme()
