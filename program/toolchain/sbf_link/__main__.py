"""Command line of the link tool, as rustc invokes it for ``bpfel-unknown-none``:

    sbf-link --export-symbols FILE <module.o> -L DIR --cpu v2 -o OUT.so -O3 [--debug]

The single input is LTO-merged LLVM bitcode (the target's ``obj-is-bitcode``).
``SBF_LINK_KEEP=1`` keeps the intermediate object next to the output.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .codegen import compile_file
from .llvm_c import LLVMError
from .relink import LinkError, link


def _inputs(argv: list[str]) -> tuple[list[Path], Path]:
    inputs: list[Path] = []
    output: Path | None = None
    takes_value = {"--export-symbols", "-L", "--cpu", "--cpu-features", "-o"}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in takes_value:
            if arg == "-o":
                output = Path(argv[i + 1])
            i += 2
            continue
        if not arg.startswith("-"):
            inputs.append(Path(arg))
        i += 1
    if output is None:
        raise SystemExit("sbf-link: no -o OUTPUT given")
    return inputs, output


def main(argv: list[str]) -> int:
    inputs, output = _inputs(argv)
    if len(inputs) != 1:
        print(
            f"sbf-link: expected exactly one LTO bitcode input, got {len(inputs)}: "
            "build with lto = true, codegen-units = 1, crate-type = [\"cdylib\"]",
            file=sys.stderr,
        )
        return 1
    try:
        obj, stats = compile_file(inputs[0])
        if os.environ.get("SBF_LINK_KEEP"):
            output.with_suffix(".o").write_bytes(obj)
        result = link(obj)
    except (LLVMError, LinkError) as exc:
        print(f"sbf-link: {exc}", file=sys.stderr)
        return 1
    output.write_bytes(result.image)
    if os.environ.get("SBF_LINK_VERBOSE"):
        print(
            f"sbf-link: {output.name}: text {result.text_size} B, rodata {result.rodata_size} B, "
            f"syscalls {', '.join(result.syscalls)}; rewrites {stats}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
