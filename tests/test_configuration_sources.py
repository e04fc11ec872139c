"""One typed configuration object (issue 24): the environment is read only in
vault_client/config.py, and the names and defaults several programs share (the services'
ports, the Redis prefix and events channel, the default URLs) are defined there once.

Static checks over the source (AST, not grep, so comments and docstrings do not count)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from vault_client.config import DEFAULT_REDIS_PREFIX, GATEWAY_PORT, SERVICE_PORTS, events_channel

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "vault_client" / "config.py"
# where the environment may not be read (localnet/, scripts/ and bench/ are development tools
# with their own command lines; localnet may not import services/ at all)
CONFIGURED = ("vault_client", "services", "vaultctl")
# where the shared constants may not be repeated (scripts/ and bench/ import them)
SHARING = ("vault_client", "services", "vaultctl", "scripts", "bench")
PORTS = {port for pair in SERVICE_PORTS.values() for port in pair} | {GATEWAY_PORT}
DEFAULT_URLS = ("http://127.0.0.1:8899", "postgresql://postgres@127.0.0.1:5432/postgres", "redis://127.0.0.1:6379/0")


def sources(folders: tuple[str, ...]) -> Iterator[tuple[Path, ast.Module]]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "_pb2" not in path.name:
                yield path, ast.parse(path.read_text(), str(path))


def environment_reads(tree: ast.Module) -> list[int]:
    """Lines that touch os.environ / os.getenv / os.putenv, or import them from os."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "getenv", "putenv", "environb", "getenvb"):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" \
                and any(alias.name in ("environ", "getenv", "environb", "getenvb") for alias in node.names):
            lines.append(node.lineno)
    return sorted(lines)


def test_environment_read_only_in_config() -> None:
    found = [f"{path.relative_to(ROOT)}:{line}" for path, tree in sources(CONFIGURED) if path != CONFIG
             for line in environment_reads(tree)]
    assert found == [], f"os.environ outside vault_client/config.py: {found}"
    assert environment_reads(ast.parse(CONFIG.read_text())), "config.py is where the environment is read"


def test_the_scan_finds_each_form() -> None:
    sample = ast.parse("import os\nfrom os import getenv\nos.environ.get('A')\nos.getenv('B')\nx = os.environ['C']\n")
    assert environment_reads(sample) == [2, 3, 4, 5]


def repeated_constants(tree: ast.Module) -> list[str]:
    """Literals that belong to config.py: a service's well-known port, the Redis prefix's
    default, a default URL, or an f-string spelling the events channel (`f"{prefix}events"`)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value in PORTS:
            found.append(f"{node.lineno}: port {node.value}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and (node.value == DEFAULT_REDIS_PREFIX or node.value in DEFAULT_URLS
                     or (re.fullmatch(r"127\.0\.0\.1:(\d+)", node.value)
                     and int(node.value.rsplit(":", 1)[1]) in PORTS)):
            found.append(f"{node.lineno}: {node.value!r}")
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[-1], ast.Constant) \
                and node.values[-1].value == "events" and isinstance(node.values[0], ast.FormattedValue):
            found.append(f"{node.lineno}: the events channel spelled out")
    return sorted(found, key=lambda item: int(item.split(":")[0]))


def test_shared_constants_defined_once() -> None:
    found = [f"{path.relative_to(ROOT)}:{where}" for path, tree in sources(SHARING) if path != CONFIG
             for where in repeated_constants(tree)]
    assert found == [], f"import these from vault_client/config.py instead: {found}"
    own = repeated_constants(ast.parse(CONFIG.read_text()))
    # config.py itself: each port once (SERVICE_PORTS, GATEWAY_PORT), the prefix and each URL once
    assert sorted(own) == sorted(set(own))
    assert len([item for item in own if "port" in item]) == len(PORTS)
    assert len([item for item in own if "'cv:'" in item]) == 1


def test_the_constant_scan_finds_repeats() -> None:
    sample = ast.parse('a = 50051\nb = "cv:"\nc = f"{p}events"\nd = "127.0.0.1:50054"\ne = 50055\n')
    assert [item.split(":")[0] for item in repeated_constants(sample)] == ["1", "2", "3", "4"]


def test_the_documented_ports_are_the_configured_ones() -> None:
    """docs/services.md's table names each service's gRPC and metrics port: the same as
    SERVICE_PORTS (the docs cannot import them)."""
    table = (ROOT / "docs" / "services.md").read_text()
    for service, (grpc_port, metrics_port) in SERVICE_PORTS.items():
        assert re.search(rf"^\| {service} \| {grpc_port} \| {metrics_port} \|", table, re.MULTILINE), service
    assert re.search(rf"^\| gateway \| {GATEWAY_PORT} \(HTTP\)", table, re.MULTILINE)
    assert events_channel(DEFAULT_REDIS_PREFIX) == "cv:events"
