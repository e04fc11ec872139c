"""The production image (Dockerfile) holds no development chain and no development keys
(issue 24): nothing copies localnet/, program/keys or anything *dev_keys*, and .dockerignore
keeps them out of the build context even if a later COPY named a parent folder. The
development chain's image (localnet/Dockerfile, docker-compose's localnet and chain-setup)
is where they go. Offline: the files are read, no Docker engine runs here."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import yaml

from vault_client.config import DEVELOPMENT_KEYS

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = ("localnet/", "program/keys/", "localnet/dev_keys/")
PINNED_FROM = re.compile(r"^FROM (\S+)", re.M)
DEMO = ROOT / "vaultctl" / "demo.py"  # development only (localnet's faucet): vaultctl imports it when run


def instructions(path: Path, name: str) -> list[list[str]]:
    """The arguments of each `name` instruction (continuation lines joined, flags dropped)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    found = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0].upper() == name:
            found.append([w for w in words[1:] if not w.startswith("--")])
    return found


def copied_sources(path: Path) -> list[str]:
    """What each COPY / ADD takes from the build context (not `--from=` another stage)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0].upper() in ("COPY", "ADD") and not any(w.startswith("--from") for w in words):
            args = [w for w in words[1:] if not w.startswith("--")]
            out += [a.removeprefix("./").rstrip("/") for a in args[:-1]]
    return out


def dev_only(source: str) -> bool:
    source = source.removeprefix("./").rstrip("/")
    return source in ("localnet", "program/keys", ".", "program", "*") or source.startswith(
        ("localnet/", "program/keys/")) or "dev_keys" in source


def ignore_patterns(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def ignored(patterns: list[str], path: str) -> bool:
    """Docker's rule, simplified: the last matching pattern wins (`!` re-includes); a pattern
    matches the path or one of its parent folders; `**/` matches any depth."""
    result = False
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        globs = [body] + ([body.removeprefix("**/")] if body.startswith("**/") else [])
        if any(fnmatch.fnmatchcase(prefix, glob) or (fnmatch.fnmatchcase(prefix.rsplit("/", 1)[-1], glob)
               and glob.startswith("*")) for prefix in prefixes for glob in globs):
            result = not negate
    return result


def test_production_image_copies_no_localnet_and_no_dev_keys() -> None:
    sources = copied_sources(ROOT / "Dockerfile")
    assert "services" in sources and "vault_client" in sources  # the scan sees the COPY lines
    assert [s for s in sources if dev_only(s)] == []


def test_dockerignore_excludes_the_development_chain_keys_and_build_output() -> None:
    patterns = ignore_patterns(ROOT / ".dockerignore")
    for path in ("localnet/__main__.py", "localnet/dev_keys/admin.json", "program/keys/collateral_vault.json",
                 "anything/some_dev_keys.json", "some_dev_keys/key.json", ".venv/bin/python", ".local/pki/ca.key",
                 "program/target/deploy/collateral_vault.so", "gen/python/x_pb2.py", "node_modules/a/b.js",
                 "clients/app/node_modules/x.js", "tests/test_x.py", "bench/bench_x.py"):
        assert ignored(patterns, path), path
    for path in ("vault_client/config.py", "vault_client/idl.py", "program/idl/collateral_vault.json",
                 "requirements.lock", "pyproject.toml", "migrations/001_init.sql", "proto/collateral_vault/v1/x.proto"):
        assert not ignored(patterns, path), path
    # every file of the repository's key folders, by name
    for folder in (ROOT / "program" / "keys", ROOT / "localnet" / "dev_keys"):
        for key in folder.glob("*.json"):
            assert ignored(patterns, str(key.relative_to(ROOT))), key


def test_the_ignore_rule_reads_negations_and_depth() -> None:
    patterns = ["program/target/", "!program/target/deploy/*.so", "**/*dev_keys*"]
    assert ignored(patterns, "program/target/release/x") and not ignored(patterns, "program/target/deploy/a.so")
    assert ignored(patterns, "a/b/my_dev_keys.json") and not ignored(patterns, "program/idl/x.json")


def test_services_read_no_key_files_at_runtime() -> None:
    """services/, vault_client/ and vaultctl import nothing from localnet at module level (vaultctl's
    demo and faucet import it when run, on a development system) and name no key folder: the
    development ids are refused by their public keys (config.DEVELOPMENT_KEYS)."""
    offenders = []
    for folder in ("services", "vault_client", "vaultctl"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for node in tree.body:  # module level
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names
                              if (n.split(".")[0] == "localnet" and path != DEMO) or n == "vaultctl.demo"
                              or (n == "vaultctl" and isinstance(node, ast.ImportFrom)
                                  and "demo" in [a.name for a in node.names])]
            for each in ast.walk(tree):
                if isinstance(each, ast.Constant) and isinstance(each.value, str) \
                        and ("dev_keys" in each.value or each.value.rstrip("/").endswith("program/keys")):
                    offenders.append(f"{path.relative_to(ROOT)}:{each.lineno}: {each.value!r}")
    assert offenders == []
    assert len(DEVELOPMENT_KEYS) >= 9


def test_localnet_image_is_pinned_non_root_and_used_only_by_the_development_chain() -> None:
    dockerfile = ROOT / "localnet" / "Dockerfile"
    bases = PINNED_FROM.findall(dockerfile.read_text())
    assert bases and all(":" in b and not b.endswith(":latest") for b in bases)
    assert ["10001"] in instructions(dockerfile, "USER")
    sources = copied_sources(dockerfile)
    assert {"localnet", "program/keys", "vault_client"} <= set(sources)
    # its own ignore file (BuildKit: <Dockerfile>.dockerignore) lets in what the root one keeps out
    patterns = ignore_patterns(ROOT / "localnet" / "Dockerfile.dockerignore")
    for path in ("localnet/genesis.py", "localnet/dev_keys/admin.json", "program/keys/collateral_vault.json",
                 "program/target/deploy/collateral_vault.so", "vault_client/idl.py"):
        assert not ignored(patterns, path), path
    for path in ("services/common/chain.py", ".venv/bin/python", "program/target/release/x", "tests/a.py"):
        assert ignored(patterns, path), path

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    development = {name for name, service in services.items() if isinstance(service.get("build"), dict)
                   and service["build"].get("dockerfile") == "localnet/Dockerfile"}
    assert development == {"localnet", "chain-setup"}
    for name, service in services.items():
        if name not in development and "build" in service:
            assert service["build"] == "." and service["image"] != services["localnet"]["image"], name
