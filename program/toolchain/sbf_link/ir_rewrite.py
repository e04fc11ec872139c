"""Rewrites of LLVM IR that the upstream BPF backend cannot lower.

The upstream backend refuses every library call. Two kinds reach it from Rust code:

* ``llvm.memcpy/memmove/memset`` whose length is not a small constant become libcalls;
  they are replaced by calls to the ``sol_memcpy_`` / ``sol_memmove_`` / ``sol_memset_``
  syscalls, which also cost less than long inline loops.
* ``llvm.umul.with.overflow.i64`` (``checked_mul``) needs a 128-bit multiply; it is
  replaced by ``(a * b, b != 0 && a > u64::MAX / b)``.

Anything else that would need a libcall (128-bit arithmetic, floats, signed 64-bit
division) still fails loudly in code generation.
"""

from __future__ import annotations

from ctypes import c_void_p
from dataclasses import dataclass, field

from . import llvm_c
from .llvm_c import OPCODE_CALL, lib

# Constant-length memory intrinsics up to this many bytes stay inline (the backend
# expands them into loads/stores); longer or variable ones become syscalls.
INLINE_MEM_LIMIT = 16

_MEM_SYSCALLS = {
    "llvm.memcpy.": "sol_memcpy_",
    "llvm.memmove.": "sol_memmove_",
    "llvm.memset.": "sol_memset_",
}


@dataclass
class RewriteStats:
    """What a rewrite changed (reported by the link tool, asserted by the tests)."""

    mem_syscalls: dict[str, int] = field(default_factory=dict)
    umul_overflow: int = 0


class _Rewriter:
    def __init__(self, context: int, module: int) -> None:
        self.llvm = lib()
        self.context = context
        self.module = module
        self.builder = self.llvm.LLVMCreateBuilderInContext(context)
        self.i8 = self.llvm.LLVMInt8TypeInContext(context)
        self.i64 = self.llvm.LLVMInt64TypeInContext(context)
        self.ptr = self.llvm.LLVMPointerTypeInContext(context, 0)
        self.void = self.llvm.LLVMVoidTypeInContext(context)
        self.stats = RewriteStats()

    def close(self) -> None:
        self.llvm.LLVMDisposeBuilder(self.builder)

    def syscall(self, name: str) -> tuple[int, int]:
        """The declaration of a memory syscall (reusing the program's own, if declared)."""
        second = self.i8 if name == "sol_memset_" else self.ptr
        params = (c_void_p * 3)(self.ptr, second, self.i64)
        fn_type = self.llvm.LLVMFunctionType(self.void, params, 3, False)
        fn = self.llvm.LLVMGetNamedFunction(self.module, name.encode())
        if not fn:
            fn = self.llvm.LLVMAddFunction(self.module, name.encode(), fn_type)
        return fn, fn_type

    def rewrite_mem(self, call: int, callee_name: str) -> bool:
        syscall = next((name for prefix, name in _MEM_SYSCALLS.items() if callee_name.startswith(prefix)), None)
        if syscall is None:
            return False
        length = self.llvm.LLVMGetOperand(call, 2)
        if self.llvm.LLVMIsAConstantInt(length) and self.llvm.LLVMConstIntGetZExtValue(length) <= INLINE_MEM_LIMIT:
            return False
        self.llvm.LLVMPositionBuilderBefore(self.builder, call)
        if self.llvm.LLVMGetIntTypeWidth(self.llvm.LLVMTypeOf(length)) != 64:
            length = self.llvm.LLVMBuildZExt(self.builder, length, self.i64, b"")
        fn, fn_type = self.syscall(syscall)
        args = (c_void_p * 3)(self.llvm.LLVMGetOperand(call, 0), self.llvm.LLVMGetOperand(call, 1), length)
        self.llvm.LLVMBuildCall2(self.builder, fn_type, fn, args, 3, b"")
        self.llvm.LLVMInstructionEraseFromParent(call)
        self.stats.mem_syscalls[syscall] = self.stats.mem_syscalls.get(syscall, 0) + 1
        return True

    def rewrite_umul(self, call: int, callee_name: str) -> bool:
        if callee_name != "llvm.umul.with.overflow.i64":
            return False
        b = self.builder
        llvm = self.llvm
        llvm.LLVMPositionBuilderBefore(b, call)
        lhs = llvm.LLVMGetOperand(call, 0)
        rhs = llvm.LLVMGetOperand(call, 1)
        zero = llvm.LLVMConstInt(self.i64, 0, False)
        one = llvm.LLVMConstInt(self.i64, 1, False)
        max_u64 = llvm.LLVMConstInt(self.i64, 0xFFFF_FFFF_FFFF_FFFF, False)
        product = llvm.LLVMBuildMul(b, lhs, rhs, b"umul.lo")
        rhs_nonzero = llvm.LLVMBuildICmp(b, llvm_c.INT_NE, rhs, zero, b"umul.nz")
        # Divide by max(rhs, 1) so the division itself never traps; the result is only
        # used when rhs != 0.
        divisor = llvm.LLVMBuildSelect(b, rhs_nonzero, rhs, one, b"umul.div")
        limit = llvm.LLVMBuildUDiv(b, max_u64, divisor, b"umul.lim")
        too_big = llvm.LLVMBuildICmp(b, llvm_c.INT_UGT, lhs, limit, b"umul.gt")
        overflow = llvm.LLVMBuildAnd(b, rhs_nonzero, too_big, b"umul.of")
        result = llvm.LLVMGetUndef(llvm.LLVMTypeOf(call))
        result = llvm.LLVMBuildInsertValue(b, result, product, 0, b"")
        result = llvm.LLVMBuildInsertValue(b, result, overflow, 1, b"")
        llvm.LLVMReplaceAllUsesWith(call, result)
        llvm.LLVMInstructionEraseFromParent(call)
        self.stats.umul_overflow += 1
        return True


def rewrite_module(context: int, module: int) -> RewriteStats:
    """Applies every rewrite to ``module`` in place and verifies the result."""
    llvm = lib()
    rewriter = _Rewriter(context, module)
    try:
        for function in list(llvm_c.iter_functions(module)):
            for inst in list(llvm_c.iter_instructions(function)):
                if llvm.LLVMGetInstructionOpcode(inst) != OPCODE_CALL:
                    continue
                callee = llvm.LLVMGetCalledValue(inst)
                name = llvm_c.value_name(callee) if callee else ""
                if name.startswith("llvm."):
                    rewriter.rewrite_mem(inst, name) or rewriter.rewrite_umul(inst, name)
    finally:
        rewriter.close()
    message = c_void_p()
    if llvm.LLVMVerifyModule(module, llvm_c.VERIFY_RETURN_STATUS, message):
        raise llvm_c.LLVMError("IR rewrite produced an invalid module: " + llvm_c.take_message(message.value))
    llvm_c.take_message(message.value)
    return rewriter.stats
