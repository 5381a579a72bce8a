// String instructions with and without REP, and the port I/O they share with IN / OUT.

#include "emu/cpu/cpu.h"

namespace kasou::emu::cpu {

namespace {

// Iterations of one REP instruction before the CPU looks up for interrupts and kicks; the
// instruction then simply runs again with the registers it left.
constexpr u32 REP_CHUNK = 4096;

} // namespace

bool Cpu::execute_string(DecodedInstruction const& instruction)
{
    auto const mnemonic = instruction.mnemonic;
    u8 const size = instruction.width;
    u8 const address_size = instruction.address_size;
    u64 const address_mask = size_mask(address_size);
    bool const rep = instruction.prefixes & (DecodedInstruction::REP | DecodedInstruction::REPNE);
    bool const repne = instruction.prefixes & DecodedInstruction::REPNE;
    auto& gpr = m_state.gpr;
    i64 const step = (m_state.rflags & rflags::DF) ? -static_cast<i64>(size) : size;
    SegmentIndex const source_segment = instruction.string_segment;

    bool done = false;
    u32 iteration = 0;
    for (; iteration < REP_CHUNK && !done; ++iteration) {
        if (rep && (gpr[1] & address_mask) == 0) {
            done = true;
            break;
        }
        u64 const rsi = gpr[6] & address_mask;
        u64 const rdi = gpr[7] & address_mask;
        bool uses_rsi = false, uses_rdi = false, compare = false;
        u64 value;
        switch (mnemonic) {
        case ZYDIS_MNEMONIC_MOVSB:
        case ZYDIS_MNEMONIC_MOVSW:
        case ZYDIS_MNEMONIC_MOVSD:
        case ZYDIS_MNEMONIC_MOVSQ:
            if (!read_memory(source_segment, rsi, size, value) || !write_memory(SegmentIndex::ES, rdi, size, value))
                return false;
            uses_rsi = uses_rdi = true;
            break;
        case ZYDIS_MNEMONIC_STOSB:
        case ZYDIS_MNEMONIC_STOSW:
        case ZYDIS_MNEMONIC_STOSD:
        case ZYDIS_MNEMONIC_STOSQ:
            if (!write_memory(SegmentIndex::ES, rdi, size, gpr[0]))
                return false;
            uses_rdi = true;
            break;
        case ZYDIS_MNEMONIC_LODSB:
        case ZYDIS_MNEMONIC_LODSW:
        case ZYDIS_MNEMONIC_LODSD:
        case ZYDIS_MNEMONIC_LODSQ:
            if (!read_memory(source_segment, rsi, size, value))
                return false;
            write_gpr(0, size, value);
            uses_rsi = true;
            break;
        case ZYDIS_MNEMONIC_CMPSB:
        case ZYDIS_MNEMONIC_CMPSW:
        case ZYDIS_MNEMONIC_CMPSD:
        case ZYDIS_MNEMONIC_CMPSQ: {
            u64 other;
            if (!read_memory(source_segment, rsi, size, value) || !read_memory(SegmentIndex::ES, rdi, size, other))
                return false;
            m_state.flags.set(LazyFlags::Op::Sub, size, value, other, (value - other) & size_mask(size));
            uses_rsi = uses_rdi = compare = true;
            break;
        }
        case ZYDIS_MNEMONIC_SCASB:
        case ZYDIS_MNEMONIC_SCASW:
        case ZYDIS_MNEMONIC_SCASD:
        case ZYDIS_MNEMONIC_SCASQ: {
            u64 other;
            if (!read_memory(SegmentIndex::ES, rdi, size, other))
                return false;
            u64 const accumulator = gpr[0] & size_mask(size);
            m_state.flags.set(LazyFlags::Op::Sub, size, accumulator, other, (accumulator - other) & size_mask(size));
            uses_rdi = compare = true;
            break;
        }
        case ZYDIS_MNEMONIC_INSB:
        case ZYDIS_MNEMONIC_INSW:
        case ZYDIS_MNEMONIC_INSD: {
            // The destination is checked before the port is read.
            u64 physical;
            if (!host_page(linear_address(SegmentIndex::ES, rdi), Access::Write, false, &physical) && m_exception)
                return false;
            if (!port_in(static_cast<u16>(gpr[2]), size, value) || !write_memory(SegmentIndex::ES, rdi, size, value))
                return false;
            uses_rdi = true;
            break;
        }
        default: // OUTS
            if (!read_memory(source_segment, rsi, size, value) || !port_out(static_cast<u16>(gpr[2]), size, value))
                return false;
            uses_rsi = true;
            break;
        }
        if (uses_rsi)
            write_gpr(6, address_size, rsi + static_cast<u64>(step));
        if (uses_rdi)
            write_gpr(7, address_size, rdi + static_cast<u64>(step));
        if (!rep) {
            m_state.rip = next_rip(instruction);
            return true;
        }
        write_gpr(1, address_size, (gpr[1] - 1) & address_mask);
        done = (gpr[1] & address_mask) == 0 || (compare && m_state.flags.zero() == repne);
        if (m_exit)
            break; // an OUTS or an MMIO write left the CPU: the rest after the exit
    }
    if (done)
        m_state.rip = next_rip(instruction);
    m_retired += iteration > 0 ? iteration - 1 : 0; // iterations count against run()'s budget
    return true;
}

bool Cpu::check_io_privilege()
{
    // FIXME: the TSS I/O permission bitmap; a CPL above IOPL simply faults.
    if (m_state.protected_mode() && m_state.cpl() > ((m_state.rflags >> 12) & 3))
        return fault(Vector::GP, 0);
    return true;
}

bool Cpu::port_in(u16 port, u8 size, u64& value)
{
    if (!check_io_privilege())
        return false;
    if (m_read_answer) {
        value = *m_read_answer & size_mask(size);
        m_read_answer.reset();
        return true;
    }
    m_exit = CpuExit { CpuExit::Kind::PortIo, false, size, port, 0 };
    return false;
}

bool Cpu::port_out(u16 port, u8 size, u64 value)
{
    if (!check_io_privilege())
        return false;
    m_exit = CpuExit { CpuExit::Kind::PortIo, true, size, port, value & size_mask(size) };
    return true;
}

} // namespace kasou::emu::cpu
