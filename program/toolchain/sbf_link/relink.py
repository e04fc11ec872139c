"""Relocatable BPF object -> SBPF v0 shared object (what the Solana ELF loader accepts).

Layout (every section's address equals its file offset, as v0 requires; the VM sees
file offset ``x`` at ``MM_PROGRAM_START + x``)::

    ELF header | program headers | .text | .rodata | .dynamic | .dynsym | .dynstr
    | .rel.dyn | .shstrtab | section headers

* All executable input sections merge into ``.text``; ``.rodata*`` and ``.data.rel.ro*``
  merge into ``.rodata``. Writable data (``.data``, ``.bss``, ``static mut``) is refused.
* Internal calls and every address (lddw immediates, pointers in read-only data) are
  resolved here, statically; only syscalls are left to the loader, as ``R_BPF_64_32``
  dynamic relocations against ``.dynsym`` entries (the loader hashes their names).
* ``e_entry`` is the ``entrypoint`` symbol; ``callx`` gets the v0 encoding; every
  instruction is checked against the v0 set.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection

from . import sbpf
from .sbpf import INSN_SIZE, MM_PROGRAM_START, OP_CALL, OP_LDDW

EM_BPF = 247
ET_DYN = 3
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
SHT_PROGBITS, SHT_STRTAB, SHT_DYNAMIC, SHT_NOBITS, SHT_REL, SHT_DYNSYM = 1, 3, 6, 8, 9, 11
PT_LOAD, PT_DYNAMIC = 1, 2
PF_X, PF_R = 1, 4
DT_NULL, DT_STRTAB, DT_SYMTAB, DT_STRSZ, DT_SYMENT, DT_REL, DT_RELSZ, DT_RELENT = 0, 5, 6, 10, 11, 17, 18, 19
R_BPF_NONE, R_BPF_64_64, R_BPF_64_ABS64, R_BPF_64_ABS32, R_BPF_64_32 = 0, 1, 2, 3, 10

EHDR_SIZE, PHDR_SIZE, SHDR_SIZE, SYM_SIZE, REL_SIZE, DYN_SIZE = 64, 56, 64, 24, 16, 16

# Syscalls the Solana runtime registers for SBPF v0 programs; a call to anything else is
# a link error here rather than a deploy failure later.
KNOWN_SYSCALLS = frozenset({
    "abort", "sol_panic_", "sol_log_", "sol_log_64_", "sol_log_pubkey", "sol_log_compute_units_",
    "sol_log_data", "sol_create_program_address", "sol_try_find_program_address",
    "sol_invoke_signed_c", "sol_invoke_signed_rust", "sol_sha256", "sol_keccak256",
    "sol_secp256k1_recover", "sol_blake3", "sol_get_clock_sysvar", "sol_get_rent_sysvar",
    "sol_get_epoch_schedule_sysvar", "sol_get_stack_height", "sol_memcpy_", "sol_memmove_",
    "sol_memset_", "sol_memcmp_", "sol_set_return_data", "sol_get_return_data",
    "sol_get_processed_sibling_instruction", "sol_remaining_compute_units",
})
# The upstream backend lowers llvm.trap to a call of this; on Solana it is `abort`.
SYSCALL_ALIASES = {"__bpf_trap": "abort"}


class LinkError(RuntimeError):
    """The object cannot be turned into a valid SBPF v0 program."""


def _align(value: int, alignment: int) -> int:
    alignment = max(alignment, 1)
    return (value + alignment - 1) // alignment * alignment


@dataclass
class LinkResult:
    image: bytes
    syscalls: list[str]
    text_size: int
    rodata_size: int
    entry_offset: int


@dataclass
class _Placed:
    out: str  # ".text" or ".rodata"
    offset: int  # offset within the merged output section
    data: bytearray


@dataclass
class _Layout:
    placed: dict[int, _Placed] = field(default_factory=dict)
    text: bytearray = field(default_factory=bytearray)
    rodata: bytearray = field(default_factory=bytearray)
    rodata_align: int = 1


def _classify(name: str, flags: int, sh_type: str) -> str | None:
    if not flags & SHF_ALLOC:
        return None
    if flags & SHF_EXECINSTR:
        return ".text"
    if name.startswith(".rodata") or name.startswith(".data.rel.ro"):
        return ".rodata"
    if sh_type == "SHT_NOBITS" or flags & SHF_WRITE:
        raise LinkError(
            f"section {name} is writable data: SBPF programs cannot have mutable statics "
            "(remove `static mut`, interior-mutable statics or zero-initialised globals)"
        )
    return ".rodata"


def _merge_sections(elf: ELFFile) -> _Layout:
    layout = _Layout()
    for index, section in enumerate(elf.iter_sections()):
        out = _classify(section.name, section["sh_flags"], section["sh_type"])
        if out is None or section["sh_size"] == 0:
            continue
        target = layout.text if out == ".text" else layout.rodata
        align = max(section["sh_addralign"], 8 if out == ".text" else 1)
        if out == ".rodata":
            layout.rodata_align = max(layout.rodata_align, align)
        target.extend(b"\0" * (_align(len(target), align) - len(target)))
        layout.placed[index] = _Placed(out, len(target), bytearray(section.data()))
        target.extend(section.data())
    if not layout.text:
        raise LinkError("the object has no code")
    return layout


def link(obj: bytes) -> LinkResult:
    """Links a relocatable BPF object into an SBPF v0 shared object image."""
    elf = ELFFile(io.BytesIO(obj))
    if elf["e_machine"] != "EM_BPF" or elf["e_type"] != "ET_REL":
        raise LinkError("input is not a relocatable BPF object")
    layout = _merge_sections(elf)

    # File layout: headers, then .text, then .rodata.
    has_rodata = bool(layout.rodata)
    n_phdrs = 4 if has_rodata else 3
    text_off = _align(EHDR_SIZE + n_phdrs * PHDR_SIZE, 8)
    rodata_off = _align(text_off + len(layout.text), max(layout.rodata_align, 8))
    base = {".text": text_off, ".rodata": rodata_off}

    def section_address(index: int) -> int:
        placed = layout.placed.get(index)
        if placed is None:
            name = elf.get_section(index).name
            raise LinkError(f"a relocation refers to section {name}, which is not loaded")
        return MM_PROGRAM_START + base[placed.out] + placed.offset

    symtab = elf.get_section_by_name(".symtab")
    if not isinstance(symtab, SymbolTableSection):
        raise LinkError("the object has no symbol table")
    symbols = list(symtab.iter_symbols())

    def symbol_address(sym_index: int) -> int | None:
        sym = symbols[sym_index]
        shndx = sym["st_shndx"]
        if shndx == "SHN_UNDEF":
            return None
        if not isinstance(shndx, int):
            raise LinkError(f"symbol {sym.name} has unsupported section index {shndx}")
        return section_address(shndx) + sym["st_value"]

    syscall_sites: list[tuple[int, str]] = []  # (file offset of the call, name)
    merged = {".text": layout.text, ".rodata": layout.rodata}

    for rel_section in elf.iter_sections():
        if not isinstance(rel_section, RelocationSection) or rel_section.is_RELA():
            if isinstance(rel_section, RelocationSection):
                raise LinkError("RELA relocations are not produced by the BPF backend")
            continue
        target_index = rel_section["sh_info"]
        placed = layout.placed.get(target_index)
        if placed is None:
            continue  # relocations of debug or other unloaded sections
        buf = merged[placed.out]
        for rel in rel_section.iter_relocations():
            r_type = rel["r_info_type"]
            where = placed.offset + rel["r_offset"]  # offset in the merged section
            sym_index = rel["r_info_sym"]
            sym_addr = symbol_address(sym_index)
            sym_name = symbols[sym_index].name
            if r_type == R_BPF_NONE:
                continue
            if r_type == R_BPF_64_32 and buf[where] == OP_CALL and placed.out == ".text":
                if sym_addr is None:
                    name = SYSCALL_ALIASES.get(sym_name, sym_name)
                    if name not in KNOWN_SYSCALLS:
                        raise LinkError(f"undefined function {sym_name!r} (not a Solana syscall)")
                    buf[where:where + INSN_SIZE] = sbpf.encode(OP_CALL, 0, 0, 0, -1)
                    syscall_sites.append((base[".text"] + where, name))
                    continue
                _, _, _, _, imm = sbpf.decode(buf, where // INSN_SIZE) if where % INSN_SIZE == 0 else (0, 0, 0, 0, 0)
                target = sym_addr + (imm + 1) * INSN_SIZE
                pc_next = MM_PROGRAM_START + base[".text"] + where + INSN_SIZE
                delta = target - pc_next
                if delta % INSN_SIZE:
                    raise LinkError(f"call to {sym_name} is not instruction-aligned")
                buf[where:where + INSN_SIZE] = sbpf.encode(OP_CALL, 0, 1, 0, delta // INSN_SIZE)
                continue
            if sym_addr is None:
                raise LinkError(f"reference to undefined symbol {sym_name!r}")
            if r_type == R_BPF_64_64:
                if buf[where] != OP_LDDW:
                    raise LinkError(f"R_BPF_64_64 at {where:#x} is not on an lddw")
                lo = struct.unpack_from("<I", buf, where + 4)[0]
                hi = struct.unpack_from("<I", buf, where + 12)[0]
                value = sym_addr + (lo | hi << 32)
                struct.pack_into("<I", buf, where + 4, value & 0xFFFF_FFFF)
                struct.pack_into("<I", buf, where + 12, value >> 32)
            elif r_type == R_BPF_64_ABS64:
                addend = struct.unpack_from("<Q", buf, where)[0]
                struct.pack_into("<Q", buf, where, (sym_addr + addend) & 0xFFFF_FFFF_FFFF_FFFF)
            elif r_type == R_BPF_64_ABS32:
                raise LinkError(f"32-bit absolute address of {sym_name} cannot hold an SBPF address")
            else:
                raise LinkError(f"unsupported relocation type {r_type} against {sym_name}")

    entry = next((s for s in symbols if s.name == "entrypoint"), None)
    if entry is None or entry["st_info"]["type"] != "STT_FUNC":
        raise LinkError("no `entrypoint` function: declare it with the runtime's entrypoint! macro")
    entry_addr = symbol_address(symbols.index(entry))
    assert entry_addr is not None
    entry_offset = entry_addr - MM_PROGRAM_START - text_off

    sbpf.fix_callx(layout.text)
    try:
        sbpf.verify(layout.text)
    except sbpf.VerifyError as exc:
        raise LinkError(str(exc)) from exc

    image = _write_image(layout, text_off, rodata_off if has_rodata else None, entry_offset, syscall_sites)
    return LinkResult(
        image=image,
        syscalls=sorted({name for _, name in syscall_sites}),
        text_size=len(layout.text),
        rodata_size=len(layout.rodata),
        entry_offset=entry_offset,
    )


def _write_image(
    layout: _Layout,
    text_off: int,
    rodata_off: int | None,
    entry_offset: int,
    syscall_sites: list[tuple[int, str]],
) -> bytes:
    out = bytearray()

    def place(data: bytes | bytearray, alignment: int = 8) -> int:
        out.extend(b"\0" * (_align(len(out), alignment) - len(out)))
        offset = len(out)
        out.extend(data)
        return offset

    out.extend(b"\0" * text_off)  # headers are written last
    assert place(layout.text) == text_off
    if rodata_off is not None:
        assert place(layout.rodata, max(layout.rodata_align, 8)) == rodata_off

    # Dynamic symbols: one per syscall name.
    dynstr = bytearray(b"\0")
    name_offsets: dict[str, int] = {}
    sym_index: dict[str, int] = {}
    dynsym = bytearray(b"\0" * SYM_SIZE)
    for _, name in syscall_sites:
        if name in sym_index:
            continue
        name_offsets[name] = len(dynstr)
        dynstr.extend(name.encode() + b"\0")
        sym_index[name] = len(dynsym) // SYM_SIZE
        # st_name, st_info (GLOBAL, NOTYPE), st_other, st_shndx (UNDEF), st_value, st_size
        dynsym.extend(struct.pack("<IBBHQQ", name_offsets[name], 0x10, 0, 0, 0, 0))
    reldyn = bytearray()
    for offset, name in sorted(syscall_sites):
        reldyn.extend(struct.pack("<QQ", offset, (sym_index[name] << 32) | R_BPF_64_32))

    # .dynamic needs the addresses of what follows it; its size is known up front.
    n_dyn = 5 + (3 if reldyn else 0)
    dynamic_off = _align(len(out), 8)
    dynsym_off = dynamic_off + n_dyn * DYN_SIZE
    dynstr_off = dynsym_off + len(dynsym)
    reldyn_off = _align(dynstr_off + len(dynstr), 8)
    entries = [(DT_SYMTAB, dynsym_off), (DT_STRTAB, dynstr_off), (DT_STRSZ, len(dynstr)), (DT_SYMENT, SYM_SIZE)]
    if reldyn:
        entries += [(DT_REL, reldyn_off), (DT_RELSZ, len(reldyn)), (DT_RELENT, REL_SIZE)]
    entries.append((DT_NULL, 0))
    dynamic = b"".join(struct.pack("<qQ", tag, value) for tag, value in entries)
    assert place(dynamic) == dynamic_off
    assert place(bytes(dynsym)) == dynsym_off
    assert place(bytes(dynstr), 1) == dynstr_off
    if reldyn:
        assert place(bytes(reldyn)) == reldyn_off
    dyn_region_end = len(out)

    # Section names and headers.
    names = [".text", ".rodata", ".dynamic", ".dynsym", ".dynstr", ".rel.dyn", ".shstrtab"]
    shstrtab = bytearray(b"\0")
    name_at: dict[str, int] = {}
    for name in names:
        name_at[name] = len(shstrtab)
        shstrtab.extend(name.encode() + b"\0")
    shstrtab_off = place(bytes(shstrtab), 1)

    # (name, type, flags, offset, size, link, info, align, entsize)
    sections: list[tuple[str, int, int, int, int, int, int, int, int]] = [
        (".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, text_off, len(layout.text), 0, 0, 8, 0),
    ]
    if rodata_off is not None:
        sections.append((".rodata", SHT_PROGBITS, SHF_ALLOC, rodata_off, len(layout.rodata), 0, 0,
                         layout.rodata_align, 0))
    dynamic_idx = len(sections) + 1
    dynsym_idx, dynstr_idx = dynamic_idx + 1, dynamic_idx + 2
    sections += [
        (".dynamic", SHT_DYNAMIC, SHF_ALLOC, dynamic_off, len(dynamic), dynstr_idx, 0, 8, DYN_SIZE),
        (".dynsym", SHT_DYNSYM, SHF_ALLOC, dynsym_off, len(dynsym), dynstr_idx, 1, 8, SYM_SIZE),
        (".dynstr", SHT_STRTAB, SHF_ALLOC, dynstr_off, len(dynstr), 0, 0, 1, 0),
    ]
    if reldyn:
        sections.append((".rel.dyn", SHT_REL, SHF_ALLOC, reldyn_off, len(reldyn), dynsym_idx, 0, 8, REL_SIZE))
    sections.append((".shstrtab", SHT_STRTAB, 0, shstrtab_off, len(shstrtab), 0, 0, 1, 0))
    shstrndx = len(sections)

    shdrs = bytearray(b"\0" * SHDR_SIZE)
    for name, sh_type, flags, offset, size, link, info, align, entsize in sections:
        addr = offset if flags & SHF_ALLOC else 0
        shdrs.extend(struct.pack("<IIQQQQIIQQ", name_at[name], sh_type, flags, addr, offset, size,
                                 link, info, align, entsize))
    shoff = place(bytes(shdrs))

    # Program headers: text R+X, rodata R, dynamic region R, PT_DYNAMIC.
    phdrs = bytearray()

    def phdr(p_type: int, flags: int, offset: int, size: int) -> None:
        phdrs.extend(struct.pack("<IIQQQQQQ", p_type, flags, offset, offset, offset, size, size, 8))

    phdr(PT_LOAD, PF_R | PF_X, text_off, len(layout.text))
    if rodata_off is not None:
        phdr(PT_LOAD, PF_R, rodata_off, len(layout.rodata))
    phdr(PT_LOAD, PF_R, dynamic_off, dyn_region_end - dynamic_off)
    phdr(PT_DYNAMIC, PF_R, dynamic_off, len(dynamic))
    out[EHDR_SIZE:EHDR_SIZE + len(phdrs)] = phdrs

    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8  # 64-bit, LSB, EV_CURRENT, SYSV
    ehdr = ident + struct.pack(
        "<HHIQQQIHHHHHH",
        ET_DYN, EM_BPF, 1,
        text_off + entry_offset,  # e_entry: the entrypoint's address (= file offset)
        EHDR_SIZE, shoff, 0,  # e_phoff, e_shoff, e_flags (0 = SBPF v0)
        EHDR_SIZE, PHDR_SIZE, len(phdrs) // PHDR_SIZE, SHDR_SIZE, len(sections) + 1, shstrndx,
    )
    out[:EHDR_SIZE] = ehdr
    return bytes(out)
