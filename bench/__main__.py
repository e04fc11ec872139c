"""`make bench`: runs every ``bench/bench_*.py`` module, writes its JSON result and renders the
latest results into bench/README.md (never the root README)."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main(selected: list[str]) -> int:
    os.environ.setdefault("CV_PROFILE", "development")  # localnet and the dev ids, as `make up`
    RESULTS.mkdir(exist_ok=True)
    modules = sorted(p.stem for p in Path(__file__).resolve().parent.glob("bench_*.py"))
    if selected:
        modules = [m for m in modules if m.removeprefix("bench_") in selected or m in selected]
    if not modules:
        print("bench: no benchmarks selected", file=sys.stderr)
        return 1
    for name in modules:
        module = importlib.import_module(f"bench.{name}")
        result = module.run()
        out = RESULTS / f"{name.removeprefix('bench_')}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps({"benchmark": name, "written": str(out.relative_to(RESULTS.parent.parent)), **result}))
    from bench.report import update_bench_readme

    update_bench_readme()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
