"""LLVM bitcode (or textual IR) -> BPF relocatable ELF object, through the LLVM-C API."""

from __future__ import annotations

import ctypes
from ctypes import byref, c_void_p
from pathlib import Path

from . import llvm_c
from .ir_rewrite import RewriteStats, rewrite_module
from .llvm_c import LLVMError, lib

TRIPLE = b"bpfel"
CPU = b"v2"
# Solana gives every frame 4 KiB; the upstream default (512 bytes) is the kernel's.
STACK_SIZE = 4096

_options_set = False


def _ensure_options() -> None:
    global _options_set
    if not _options_set:
        llvm_c.set_cl_options([f"-bpf-stack-size={STACK_SIZE}"])
        _options_set = True


def compile_to_object(source: bytes, *, textual_ir: bool = False) -> tuple[bytes, RewriteStats]:
    """Parses ``source`` (bitcode, or textual IR when ``textual_ir``), rewrites it for the
    upstream BPF backend and returns the relocatable object with what was rewritten."""
    llvm = lib()
    _ensure_options()
    context = llvm.LLVMContextCreate()
    try:
        buffer = llvm.LLVMCreateMemoryBufferWithMemoryRangeCopy(source, len(source), b"input")
        module = c_void_p()
        message = c_void_p()
        if textual_ir:
            failed = llvm.LLVMParseIRInContext(context, buffer, byref(module), byref(message))
        else:
            failed = llvm.LLVMParseBitcodeInContext2(context, buffer, byref(module))
            llvm.LLVMDisposeMemoryBuffer(buffer)
        if failed:
            raise LLVMError("cannot parse the module: " + llvm_c.take_message(message.value))
        try:
            llvm.LLVMSetTarget(module, TRIPLE)
            stats = rewrite_module(context, module.value)  # type: ignore[arg-type]
            return _emit(module.value), stats  # type: ignore[arg-type]
        finally:
            llvm.LLVMDisposeModule(module)
    finally:
        llvm.LLVMContextDispose(context)


def _emit(module: int) -> bytes:
    llvm = lib()
    target = c_void_p()
    message = c_void_p()
    if llvm.LLVMGetTargetFromTriple(TRIPLE, byref(target), byref(message)):
        raise LLVMError("no BPF target in libLLVM: " + llvm_c.take_message(message.value))
    machine = llvm.LLVMCreateTargetMachine(
        target, TRIPLE, CPU, b"", llvm_c.OPT_AGGRESSIVE, llvm_c.RELOC_PIC, llvm_c.CODE_MODEL_DEFAULT
    )
    try:
        out = c_void_p()
        if llvm.LLVMTargetMachineEmitToMemoryBuffer(machine, module, llvm_c.OBJECT_FILE, byref(message), byref(out)):
            raise LLVMError("BPF code generation failed: " + llvm_c.take_message(message.value))
        try:
            start = llvm.LLVMGetBufferStart(out)
            size = llvm.LLVMGetBufferSize(out)
            return ctypes.string_at(start, size)
        finally:
            llvm.LLVMDisposeMemoryBuffer(out)
    finally:
        llvm.LLVMDisposeTargetMachine(machine)


def compile_file(path: Path) -> tuple[bytes, RewriteStats]:
    data = path.read_bytes()
    return compile_to_object(data, textual_ir=not data.startswith(b"BC\xc0\xde"))
