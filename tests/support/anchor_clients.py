"""The third-party Anchor clients of tests/clients/, installed on first use and kept:
@coral-xyz/anchor from the npm registry (`npm ci` of clients/anchor-ts/package-lock.json)
and anchorpy in its own virtualenv (clients/anchorpy/requirements.lock). Each install is
redone only when its lock file changes (a stamp holds the lock's hash); npm's and pip's own
caches keep a re-install from downloading again. Nothing is mocked or skipped: a missing
`node`/`npm` or an unreachable registry fails the test."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from localnet.svm import ROOT

TS_CLIENT = ROOT / "clients" / "anchor-ts"
ANCHORPY_CLIENT = ROOT / "clients" / "anchorpy"
ANCHORPY_PYTHON = ANCHORPY_CLIENT / ".venv" / "bin" / "python"


def _lock_hash(lock: Path) -> str:
    return hashlib.sha256(lock.read_bytes()).hexdigest()


def _run(argv: list[str], cwd: Path) -> None:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def node_binary() -> str:
    node = shutil.which("node")
    assert node, "node is not installed: the Anchor TypeScript client test needs it (never skipped)"
    return node


def ensure_ts_client() -> None:
    """`npm ci` in clients/anchor-ts unless node_modules was installed from this lock."""
    npm = shutil.which("npm")
    assert npm, "npm is not installed: the Anchor TypeScript client test needs it (never skipped)"
    node_binary()
    stamp = TS_CLIENT / "node_modules" / ".ci-stamp"
    want = _lock_hash(TS_CLIENT / "package-lock.json")
    if stamp.exists() and stamp.read_text() == want:
        return
    _run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], TS_CLIENT)
    stamp.write_text(want)


def ensure_anchorpy() -> None:
    """clients/anchorpy/.venv with exactly clients/anchorpy/requirements.lock."""
    stamp = ANCHORPY_CLIENT / ".venv" / ".lock-stamp"
    lock = ANCHORPY_CLIENT / "requirements.lock"
    want = _lock_hash(lock)
    if ANCHORPY_PYTHON.exists() and stamp.exists() and stamp.read_text() == want:
        return
    if not ANCHORPY_PYTHON.exists():
        _run([sys.executable, "-m", "venv", str(ANCHORPY_CLIENT / ".venv")], ANCHORPY_CLIENT)
    _run([str(ANCHORPY_PYTHON), "-m", "pip", "install", "-q", "-r", str(lock)], ANCHORPY_CLIENT)
    _run([str(ANCHORPY_PYTHON), "-m", "pip", "check"], ANCHORPY_CLIENT)
    stamp.write_text(want)
