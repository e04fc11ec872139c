"""The SBF link tool on small hand-written LLVM modules: what it rewrites, what it refuses,
and the shape of the ELF it writes."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from sbf_link import sbpf
from sbf_link.codegen import compile_to_object
from sbf_link.relink import LinkError, link

from localnet.svm import ROOT

HEADER = 'target datalayout = "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"\ntarget triple = "bpfel"\n'


def ir(body: str) -> bytes:
    return (HEADER + textwrap.dedent(body)).encode()


VARIABLE_MEMCPY = ir("""
    declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)
    declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)
    declare { i64, i1 } @llvm.umul.with.overflow.i64(i64, i64)
    define i64 @entrypoint(ptr %input) {
      %n = load i64, ptr %input
      %dst = getelementptr i8, ptr %input, i64 64
      call void @llvm.memcpy.p0.p0.i64(ptr %dst, ptr %input, i64 %n, i1 false)
      call void @llvm.memset.p0.i64(ptr %dst, i8 7, i64 4096, i1 false)
      call void @llvm.memset.p0.i64(ptr %dst, i8 0, i64 8, i1 false)
      %r = call { i64, i1 } @llvm.umul.with.overflow.i64(i64 %n, i64 %n)
      %v = extractvalue { i64, i1 } %r, 0
      ret i64 %v
    }
""")


def test_rewrites_memory_libcalls_and_checked_mul() -> None:
    obj, stats = compile_to_object(VARIABLE_MEMCPY, textual_ir=True)
    assert stats.mem_syscalls == {"sol_memcpy_": 1, "sol_memset_": 1}  # the 8-byte memset stays inline
    assert stats.umul_overflow == 1
    result = link(obj)
    assert result.syscalls == ["sol_memcpy_", "sol_memset_"]


def test_output_is_an_sbpf_v0_shared_object() -> None:
    obj, _ = compile_to_object(VARIABLE_MEMCPY, textual_ir=True)
    image = link(obj).image
    elf = ELFFile(io.BytesIO(image))
    assert elf["e_type"] == "ET_DYN" and elf["e_machine"] == "EM_BPF" and elf["e_flags"] == 0
    text = elf.get_section_by_name(".text")
    rel_dyn = elf.get_section_by_name(".rel.dyn")
    assert text is not None and isinstance(rel_dyn, RelocationSection)
    assert text["sh_addr"] == text["sh_offset"]
    assert text["sh_addr"] <= elf["e_entry"] < text["sh_addr"] + text["sh_size"]
    relocs = list(rel_dyn.iter_relocations())
    assert {r["r_info_type"] for r in relocs} == {10}
    for reloc in relocs:  # every syscall site is a `call -1` the loader will patch
        opc, _, _, _, imm = sbpf.decode(image, reloc["r_offset"] // 8)
        assert (opc, imm) == (sbpf.OP_CALL, -1)
    assert [s["p_type"] for s in elf.iter_segments()][-1] == "PT_DYNAMIC"


def test_writable_static_is_refused() -> None:
    obj, _ = compile_to_object(ir("""
        @counter = global i64 0
        define i64 @entrypoint(ptr %input) {
          %v = load i64, ptr @counter
          %w = add i64 %v, 1
          store i64 %w, ptr @counter
          ret i64 %w
        }
    """), textual_ir=True)
    with pytest.raises(LinkError, match="writable data"):
        link(obj)


def test_unknown_external_function_is_refused() -> None:
    obj, _ = compile_to_object(ir("""
        declare void @not_a_syscall(i64)
        define i64 @entrypoint(ptr %input) {
          call void @not_a_syscall(i64 1)
          ret i64 0
        }
    """), textual_ir=True)
    with pytest.raises(LinkError, match="not a Solana syscall"):
        link(obj)


def test_missing_entrypoint_is_refused() -> None:
    obj, _ = compile_to_object(ir("define i64 @main(ptr %input) {\n  ret i64 0\n}\n"), textual_ir=True)
    with pytest.raises(LinkError, match="entrypoint"):
        link(obj)


def test_128_bit_multiply_fails_loudly() -> None:
    """The upstream BPF backend has no 128-bit multiply: the build must stop, not miscompile."""
    source = ir("""
        define i64 @entrypoint(ptr %input) {
          %a = load i128, ptr %input
          %b = load i128, ptr %input
          %m = mul i128 %a, %b
          %h = lshr i128 %m, 64
          %t = trunc i128 %h to i64
          ret i64 %t
        }
    """)
    code = (
        "import sys; from sbf_link.codegen import compile_to_object; from sbf_link.relink import link; "
        "link(compile_to_object(sys.stdin.buffer.read(), textual_ir=True)[0])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], input=source, capture_output=True,
        env={"PYTHONPATH": str(ROOT / "program" / "toolchain")},
    )
    assert proc.returncode != 0
    assert b"__multi3" in proc.stderr or b"not supported" in proc.stderr, proc.stderr


def test_verifier_refuses_32_bit_alu_and_broken_lddw() -> None:
    add32 = sbpf.encode(0x04, 1, 0, 0, 1)  # add32 r1, 1: sign-extends on SBPF v0
    exit_ = sbpf.encode(sbpf.OP_EXIT, 0, 0, 0, 0)
    with pytest.raises(sbpf.VerifyError, match="32-bit ALU"):
        sbpf.verify(add32 + exit_)
    with pytest.raises(sbpf.VerifyError, match="lddw"):
        sbpf.verify(sbpf.encode(sbpf.OP_LDDW, 1, 0, 0, 5) + exit_)
    sbpf.verify(sbpf.encode(sbpf.OP_LDDW, 1, 0, 0, 5) + struct.pack("<Q", 0) + exit_)


def test_callx_gets_the_v0_encoding() -> None:
    text = bytearray(sbpf.encode(sbpf.OP_CALLX, 3, 0, 0, 0))
    assert sbpf.fix_callx(text) == 1
    assert sbpf.decode(text, 0) == (sbpf.OP_CALLX, 0, 0, 0, 3)
