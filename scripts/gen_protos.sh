#!/usr/bin/env bash
# Generates the Python gRPC stubs (and mypy stubs) from proto/ into gen/python/.
# Generated code is never committed (gen/ is ignored); `make` runs this when a .proto changes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=gen/python
rm -rf "$out" && mkdir -p "$out"
PATH="$(pwd)/.venv/bin:$PATH" .venv/bin/python -m grpc_tools.protoc -I proto \
  --python_out="$out" --grpc_python_out="$out" --mypy_out="$out" --mypy_grpc_out="$out" \
  proto/collateral_vault/v1/*.proto 2>&1 | { grep -v "^Writing mypy" || true; }
for d in "$out/collateral_vault" "$out/collateral_vault/v1"; do : > "$d/__init__.py"; done
: > "$out/collateral_vault/py.typed"
