"""ctypes bindings to the part of the LLVM-C API the link tool uses (libLLVM 22)."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from ctypes import POINTER, byref, c_bool, c_char_p, c_int, c_size_t, c_uint, c_ulonglong, c_void_p
from functools import cache
from typing import Any

LIBLLVM = os.environ.get("SBF_LIBLLVM", "/usr/lib/x86_64-linux-gnu/libLLVM.so.22.1")

# LLVMOpcode values (llvm-c/Core.h).
OPCODE_CALL = 45
# LLVMIntPredicate
INT_NE = 33
INT_UGT = 34
# LLVMCodeGenFileType
OBJECT_FILE = 1
# LLVMCodeGenOptLevel / LLVMRelocMode / LLVMCodeModel
OPT_AGGRESSIVE = 3
RELOC_PIC = 2
CODE_MODEL_DEFAULT = 0
# LLVMVerifierFailureAction
VERIFY_RETURN_STATUS = 2


class LLVMError(RuntimeError):
    """An LLVM-C call reported failure."""


_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "LLVMContextCreate": (c_void_p, []),
    "LLVMContextDispose": (None, [c_void_p]),
    "LLVMCreateMemoryBufferWithContentsOfFile": (c_bool, [c_char_p, POINTER(c_void_p), POINTER(c_void_p)]),
    "LLVMCreateMemoryBufferWithMemoryRangeCopy": (c_void_p, [c_char_p, c_size_t, c_char_p]),
    "LLVMDisposeMemoryBuffer": (None, [c_void_p]),
    "LLVMGetBufferStart": (c_void_p, [c_void_p]),
    "LLVMGetBufferSize": (c_size_t, [c_void_p]),
    "LLVMParseBitcodeInContext2": (c_bool, [c_void_p, c_void_p, POINTER(c_void_p)]),
    "LLVMParseIRInContext": (c_bool, [c_void_p, c_void_p, POINTER(c_void_p), POINTER(c_void_p)]),
    "LLVMDisposeModule": (None, [c_void_p]),
    "LLVMDisposeMessage": (None, [c_void_p]),
    "LLVMVerifyModule": (c_bool, [c_void_p, c_int, POINTER(c_void_p)]),
    "LLVMPrintModuleToString": (c_void_p, [c_void_p]),
    "LLVMSetTarget": (None, [c_void_p, c_char_p]),
    "LLVMParseCommandLineOptions": (None, [c_int, POINTER(c_char_p), c_char_p]),
    "LLVMInitializeBPFTargetInfo": (None, []),
    "LLVMInitializeBPFTarget": (None, []),
    "LLVMInitializeBPFTargetMC": (None, []),
    "LLVMInitializeBPFAsmPrinter": (None, []),
    "LLVMGetTargetFromTriple": (c_bool, [c_char_p, POINTER(c_void_p), POINTER(c_void_p)]),
    "LLVMCreateTargetMachine": (c_void_p, [c_void_p, c_char_p, c_char_p, c_char_p, c_int, c_int, c_int]),
    "LLVMDisposeTargetMachine": (None, [c_void_p]),
    "LLVMTargetMachineEmitToMemoryBuffer": (c_bool, [c_void_p, c_void_p, c_int, POINTER(c_void_p), POINTER(c_void_p)]),
    "LLVMGetFirstFunction": (c_void_p, [c_void_p]),
    "LLVMGetNextFunction": (c_void_p, [c_void_p]),
    "LLVMGetNamedFunction": (c_void_p, [c_void_p, c_char_p]),
    "LLVMAddFunction": (c_void_p, [c_void_p, c_char_p, c_void_p]),
    "LLVMGetFirstBasicBlock": (c_void_p, [c_void_p]),
    "LLVMGetNextBasicBlock": (c_void_p, [c_void_p]),
    "LLVMGetFirstInstruction": (c_void_p, [c_void_p]),
    "LLVMGetNextInstruction": (c_void_p, [c_void_p]),
    "LLVMGetInstructionOpcode": (c_int, [c_void_p]),
    "LLVMGetCalledValue": (c_void_p, [c_void_p]),
    "LLVMGetValueName2": (c_void_p, [c_void_p, POINTER(c_size_t)]),
    "LLVMGetOperand": (c_void_p, [c_void_p, c_uint]),
    "LLVMIsAConstantInt": (c_void_p, [c_void_p]),
    "LLVMConstIntGetZExtValue": (c_ulonglong, [c_void_p]),
    "LLVMTypeOf": (c_void_p, [c_void_p]),
    "LLVMGetIntTypeWidth": (c_uint, [c_void_p]),
    "LLVMVoidTypeInContext": (c_void_p, [c_void_p]),
    "LLVMPointerTypeInContext": (c_void_p, [c_void_p, c_uint]),
    "LLVMInt8TypeInContext": (c_void_p, [c_void_p]),
    "LLVMInt64TypeInContext": (c_void_p, [c_void_p]),
    "LLVMFunctionType": (c_void_p, [c_void_p, POINTER(c_void_p), c_uint, c_bool]),
    "LLVMConstInt": (c_void_p, [c_void_p, c_ulonglong, c_bool]),
    "LLVMGetUndef": (c_void_p, [c_void_p]),
    "LLVMCreateBuilderInContext": (c_void_p, [c_void_p]),
    "LLVMDisposeBuilder": (None, [c_void_p]),
    "LLVMPositionBuilderBefore": (None, [c_void_p, c_void_p]),
    "LLVMBuildCall2": (c_void_p, [c_void_p, c_void_p, c_void_p, POINTER(c_void_p), c_uint, c_char_p]),
    "LLVMBuildMul": (c_void_p, [c_void_p, c_void_p, c_void_p, c_char_p]),
    "LLVMBuildUDiv": (c_void_p, [c_void_p, c_void_p, c_void_p, c_char_p]),
    "LLVMBuildICmp": (c_void_p, [c_void_p, c_int, c_void_p, c_void_p, c_char_p]),
    "LLVMBuildAnd": (c_void_p, [c_void_p, c_void_p, c_void_p, c_char_p]),
    "LLVMBuildSelect": (c_void_p, [c_void_p, c_void_p, c_void_p, c_void_p, c_char_p]),
    "LLVMBuildZExt": (c_void_p, [c_void_p, c_void_p, c_void_p, c_char_p]),
    "LLVMBuildInsertValue": (c_void_p, [c_void_p, c_void_p, c_void_p, c_uint, c_char_p]),
    "LLVMReplaceAllUsesWith": (None, [c_void_p, c_void_p]),
    "LLVMInstructionEraseFromParent": (None, [c_void_p]),
}


class _Lib:
    def __init__(self, path: str) -> None:
        self._dll = ctypes.CDLL(path)
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(self._dll, name)
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name, fn)

    def __getattr__(self, name: str) -> Any:  # the functions set above, for the type checker
        raise AttributeError(name)


@cache
def lib() -> _Lib:
    """The loaded library, with the BPF target initialized."""
    if not os.path.exists(LIBLLVM):
        raise LLVMError(f"{LIBLLVM} not found: install Debian's libllvm22 (pulled in by rustc-web)")
    llvm = _Lib(LIBLLVM)
    llvm.LLVMInitializeBPFTargetInfo()
    llvm.LLVMInitializeBPFTarget()
    llvm.LLVMInitializeBPFTargetMC()
    llvm.LLVMInitializeBPFAsmPrinter()
    return llvm


def take_message(ptr: int | None) -> str:
    """Copies and frees an LLVM-allocated message."""
    if not ptr:
        return ""
    text = ctypes.string_at(ptr).decode(errors="replace")
    lib().LLVMDisposeMessage(ptr)
    return text


def value_name(value: int) -> str:
    size = c_size_t()
    ptr = lib().LLVMGetValueName2(value, byref(size))
    return ctypes.string_at(ptr, size.value).decode() if ptr else ""


def iter_functions(module: int) -> Iterator[int]:
    llvm = lib()
    fn = llvm.LLVMGetFirstFunction(module)
    while fn:
        yield fn
        fn = llvm.LLVMGetNextFunction(fn)


def iter_instructions(function: int) -> Iterator[int]:
    llvm = lib()
    block = llvm.LLVMGetFirstBasicBlock(function)
    while block:
        inst = llvm.LLVMGetFirstInstruction(block)
        while inst:
            nxt = llvm.LLVMGetNextInstruction(inst)
            yield inst
            inst = nxt
        block = llvm.LLVMGetNextBasicBlock(block)


def set_cl_options(options: list[str]) -> None:
    """Passes LLVM command-line options (e.g. ``-bpf-stack-size=4096``) once per process."""
    argv = [b"sbf-link", *(o.encode() for o in options)]
    arr = (c_char_p * len(argv))(*argv)
    lib().LLVMParseCommandLineOptions(len(argv), arr, None)
