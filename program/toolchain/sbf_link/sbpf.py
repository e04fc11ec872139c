"""The SBPF v0 instruction set, as the Solana loader's verifier accepts it, and the
encoding fixes the upstream BPF backend's output needs."""

from __future__ import annotations

import struct

INSN_SIZE = 8
# Virtual address of the program (read-only) region in SBPF v0; file offset 0 maps here.
MM_PROGRAM_START = 0x1_0000_0000

OP_LDDW = 0x18
OP_CALL = 0x85
OP_CALLX = 0x8D
OP_EXIT = 0x95

_LOADS = {0x61, 0x69, 0x71, 0x79}
_STORES_IMM = {0x62, 0x6A, 0x72, 0x7A}
_STORES_REG = {0x63, 0x6B, 0x73, 0x7B}
# 64-bit ALU: add sub mul div or and lsh rsh neg mod xor mov arsh (imm and reg forms).
_ALU64 = {0x07, 0x0F, 0x17, 0x1F, 0x27, 0x2F, 0x37, 0x3F, 0x47, 0x4F, 0x57, 0x5F, 0x67, 0x6F,
          0x77, 0x7F, 0x87, 0x97, 0x9F, 0xA7, 0xAF, 0xB7, 0xBF, 0xC7, 0xCF}
# Byte swaps (le/be) are ALU-class but 64-bit safe.
_ENDIAN = {0xD4, 0xDC}
_JUMPS = {0x05, 0x15, 0x1D, 0x25, 0x2D, 0x35, 0x3D, 0x45, 0x4D, 0x55, 0x5D, 0x65, 0x6D, 0x75,
          0x7D, 0xA5, 0xAD, 0xB5, 0xBD, 0xC5, 0xCD, 0xD5, 0xDD}
V0_OPCODES = frozenset(_LOADS | _STORES_IMM | _STORES_REG | _ALU64 | _ENDIAN | _JUMPS
                       | {OP_LDDW, OP_CALL, OP_CALLX, OP_EXIT})

# 32-bit ALU ops exist in SBPF v0 but sign-extend their result where eBPF zero-extends;
# code generated for cpu v2 never uses them, so meeting one means a miscompile risk.
_ALU32_CLASS = 0x04


class VerifyError(ValueError):
    """The text section holds an instruction SBPF v0 would reject or misexecute."""


def decode(text: bytes | bytearray, index: int) -> tuple[int, int, int, int, int]:
    """(opcode, dst, src, offset, imm) of instruction ``index``."""
    opc, regs, off, imm = struct.unpack_from("<BBhi", text, index * INSN_SIZE)
    return opc, regs & 0x0F, regs >> 4, off, imm


def encode(opc: int, dst: int, src: int, off: int, imm: int) -> bytes:
    return struct.pack("<BBhi", opc, (src << 4) | dst, off, imm)


def fix_callx(text: bytearray) -> int:
    """Moves ``callx``'s register into the immediate (the v0 encoding). Returns count."""
    fixed = 0
    for i in range(len(text) // INSN_SIZE):
        opc, dst, src, _off, _imm = decode(text, i)
        if opc == OP_CALLX:
            reg = dst or src
            text[i * INSN_SIZE:(i + 1) * INSN_SIZE] = encode(opc, 0, 0, 0, reg)
            fixed += 1
    return fixed


def verify(text: bytes | bytearray) -> None:
    """Checks every instruction against the v0 set and the lddw pairing rule."""
    if len(text) % INSN_SIZE:
        raise VerifyError(f".text size {len(text)} is not a multiple of {INSN_SIZE}")
    count = len(text) // INSN_SIZE
    i = 0
    while i < count:
        opc, dst, src, _off, imm = decode(text, i)
        if opc == OP_LDDW:
            if i + 1 >= count or text[(i + 1) * INSN_SIZE] != 0:
                raise VerifyError(f"instruction {i}: lddw without its second half")
            i += 2
            continue
        if opc not in V0_OPCODES:
            kind = "32-bit ALU" if opc & 0x07 == _ALU32_CLASS else "unsupported"
            raise VerifyError(f"instruction {i}: {kind} opcode {opc:#04x} is not allowed in SBPF v0")
        if opc == OP_CALLX and not 0 <= imm <= 9:
            raise VerifyError(f"instruction {i}: callx register r{imm} is invalid")
        if dst > 10 or src > 10:
            raise VerifyError(f"instruction {i}: register out of range")
        i += 1
