"""Dependencies run one way (issue 24): the program client package (vault_client) imports
none of the project's other packages; localnet, vaultctl and bench import nothing from
services/ (what the CLI shares with the services, the configuration, the client's TLS channel
and program error names, and what the benchmarks share with them, the HTTP and JSON-RPC
clients, the event loop, the heap freeze, key files and process readings, is in the client
package; what a benchmark measures of a service's internals is measured by that service's
own entry point, services/<service>/perf_*.py, which the benchmark runs in a process of its
own); everything outside tests/ imports nothing from tests/; no service imports another
service's modules (what two services share is in proto/, services/common or the client). An
AST scan of every module asserts each rule; `python -c` in a fresh interpreter proves that
importing localnet, the client, vaultctl and bench (every module, vaultctl.cli and the
benchmarks included) loads no module the rule forbids."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("vault_client", "services", "localnet", "vaultctl", "bench", "scripts", "tests")
SERVICES = ("vault_manager", "balance_tracker", "cpi_manager", "monitor", "gateway")


def imported(path: Path) -> set[str]:
    """Every module `path` imports (absolute names; relative imports are resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def offenders(folders: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return [f"{path.relative_to(ROOT)} imports {name}" for folder in folders for path in modules(folder)
            for name in sorted(imported(path)) if name.split(".")[0] in forbidden or name in forbidden
            or any(name.startswith(f"{f}.") for f in forbidden)]


def test_the_client_package_imports_none_of_the_project() -> None:
    assert offenders(("vault_client",), tuple(p for p in PROJECT if p != "vault_client")) == []


def test_localnet_imports_nothing_from_services_or_tests() -> None:
    assert offenders(("localnet",), ("services", "tests", "bench", "vaultctl")) == []


def test_vaultctl_imports_nothing_from_services_or_tests() -> None:
    assert offenders(("vaultctl",), ("services", "tests", "bench")) == []


def test_bench_imports_nothing_from_services_or_tests() -> None:
    assert offenders(("bench",), ("services", "tests", "vaultctl")) == []


def test_nothing_outside_tests_imports_tests() -> None:
    assert offenders(("vault_client", "services", "localnet", "vaultctl", "bench", "scripts"), ("tests",)) == []


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another_service(service: str) -> None:
    others = tuple(f"services.{other}" for other in SERVICES if other != service)
    assert offenders((f"services/{service}",), others) == []


def test_the_scan_sees_an_offending_import() -> None:
    """The AST scan is not vacuous: both import forms and a relative import are caught."""
    sample = ROOT / "services" / "gateway" / "_dependency_probe.py"
    sample.write_text("from services.balance_tracker.service import X\nimport tests.support\nfrom ..monitor import y\n")
    try:
        assert {"services.balance_tracker.service", "tests.support", "services.monitor"} <= imported(sample)
    finally:
        sample.unlink()


@pytest.mark.parametrize(("package", "forbidden"), [
    ("vault_client", ("services", "localnet", "vaultctl", "bench", "tests")),
    ("localnet", ("services", "bench", "tests")),
    ("vaultctl", ("services", "bench", "tests")),
    ("bench", ("services", "tests", "vaultctl")),
])
def test_importing_a_package_loads_no_forbidden_module(package: str, forbidden: tuple[str, ...]) -> None:
    """In a fresh interpreter: import every module of `package`, then list what got loaded."""
    names = sorted({".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                    for p in modules(package) if p.name != "__main__.py"})
    code = ("import importlib, json, sys\n"
            f"for name in {names!r}: importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT}:{ROOT / 'gen' / 'python'}"}).stdout
    loaded = json.loads(out)
    assert [name for name in loaded if any(name == f or name.startswith(f"{f}.") for f in forbidden)] == []
