"""What the audit outbox's journal adds to a submission: SubmitTransaction journals the audit
entry to the spool file (a write and an fdatasync, in a worker thread) before it sends, so
this is latency added in series on the submission path; PostgreSQL's insert still overlaps
the status wait as before.

Journal calls one at a time (each its own write and sync) and 32 in flight (group commit:
calls made while a sync is in flight share the next one), into a spool under `.local/` on
this machine's disk; latency per call, CPU of the measuring process per call, and syncs per
call. Three passes, the median pass counts. The measurement is the services' own entry point
services/common/perf_audit_outbox.py (bench/ imports nothing from services/), run in a
process of its own."""

from __future__ import annotations

from typing import Any

from bench.probes import run_probe


def run() -> dict[str, Any]:
    return run_probe("services.common.perf_audit_outbox")
