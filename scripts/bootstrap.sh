#!/usr/bin/env bash
# bootstrap.sh: everything `make up` and `make test` need, installed once and skipped after.
#   * Debian: rustc-web, cargo-web, rust-web-src, libllvm22 (the SBF toolchain; see
#     program/README.md), nghttp2-client (h2load, the mesh benchmark's compiled load
#     generator; tests/bench checks it), openssl (the HTTPS test's certificate),
#     python3-venv when the interpreter lacks venv.
#   * .venv with the pinned requirements.lock and this project (editable).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-apt.sh rustc-web cargo-web rust-web-src libllvm22 nghttp2-client openssl
if [ ! -d /usr/src/rustc-1.96.0/library/vendor ]; then
  echo "bootstrap: rust-web-src 1.96 did not provide /usr/src/rustc-1.96.0/library/vendor" >&2
  exit 1
fi

# kubectl renders deploy/k8s in the tests (this machine kind ships it; Debian's is the fallback).
command -v kubectl >/dev/null || scripts/ensure-apt.sh kubernetes-client

python="${PYTHON:-python3}"
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  scripts/ensure-apt.sh python3-venv
fi
stamp_want="$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)"
stamp_file=.venv/.bootstrap-stamp
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp_want" ]; then
  echo "==> creating .venv (pinned requirements.lock)"
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  log=.venv/pip-install.log
  if ! { .venv/bin/python -m pip install -q -r requirements.lock \
         && .venv/bin/python -m pip install -q --no-deps -e . \
         && .venv/bin/python -m pip check; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "bootstrap: Python dependencies failed to install (log above, kept in $log)" >&2
    exit 1
  fi
  echo "$stamp_want" > "$stamp_file"
fi

# Generated gRPC stubs live in gen/python (not committed): make them importable in the venv.
site="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$(pwd)/gen/python" > "$site/collateral_vault_gen.pth"
