#!/usr/bin/env bash
# build-programs.sh: compiles every crate under program/ into program/target/deploy/<name>.so
# with Debian's rustc (RUSTC_BOOTSTRAP for -Zbuild-std) and the project's link tool.
# Program ids and PDAs are build-time constants (scripts/gen_program_ids.py): development
# ids from program/keys/, or VAULT_PROGRAM_ID / POSITION_MANAGER_ID for a production build.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"${PYTHON:-$root/.venv/bin/python}" "$root/scripts/gen_program_ids.py"
cd "$root/program"
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
# Never let a rustup toolchain or a user's cargo config redirect the build.
unset RUSTFLAGS CARGO_BUILD_TARGET || true
/usr/bin/cargo build --release --quiet
# position_manager again at the development-only second id (tests use it as "another
# program"); its own target directory keeps both builds cached.
/usr/bin/cargo build --release --quiet -p position_manager --features unauthorized --target-dir target/unauthorized
mkdir -p target/deploy
cp -p target/unauthorized/bpfel-unknown-none/release/libposition_manager.so \
  target/bpfel-unknown-none/release/libposition_manager_unauthorized.so
for so in target/bpfel-unknown-none/release/lib*.so; do
  name="$(basename "$so" .so)"; name="${name#lib}"
  cp -p "$so" "target/deploy/$name.so"
  echo "program $name: $(pwd)/target/deploy/$name.so ($(stat -c %s "$so") bytes)"
done
