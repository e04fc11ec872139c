#!/usr/bin/env bash
# build-programs.sh: compiles every crate under program/ into program/target/deploy/<name>.so
# with Debian's rustc (RUSTC_BOOTSTRAP for -Zbuild-std) and the project's link tool.
set -euo pipefail
cd "$(dirname "$0")/../program"
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
# Never let a rustup toolchain or a user's cargo config redirect the build.
unset RUSTFLAGS CARGO_BUILD_TARGET || true
/usr/bin/cargo build --release --quiet
mkdir -p target/deploy
for so in target/bpfel-unknown-none/release/lib*.so; do
  name="$(basename "$so" .so)"; name="${name#lib}"
  cp -p "$so" "target/deploy/$name.so"
  echo "program $name: $(pwd)/target/deploy/$name.so ($(stat -c %s "$so") bytes)"
done
