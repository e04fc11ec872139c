"""The project's SBF link tool.

rustc (target ``bpfel-unknown-none``, LTO, ``crate-type = ["cdylib"]``) hands its linker one
LTO-merged LLVM bitcode module. This package turns it into an SBPF v0 shared object the
Solana loader accepts:

* :mod:`sbf_link.llvm_c` — ctypes bindings to the LLVM-C API of Debian's libLLVM 22.
* :mod:`sbf_link.ir_rewrite` — rewrites the IR the upstream BPF backend cannot lower
  (memcpy/memmove/memset libcalls -> ``sol_mem*_`` syscalls; ``umul.with.overflow.i64``
  -> a division-based check), walking the module through the API, not regexes.
* :mod:`sbf_link.codegen` — bitcode -> BPF relocatable object (cpu v2, 4 KiB frames).
* :mod:`sbf_link.relink` — relocatable object -> SBPF v0 ``ET_DYN`` shared object.
* :mod:`sbf_link.sbpf` — the SBPF v0 instruction set check the loader's verifier applies.
"""
