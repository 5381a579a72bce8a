#include "emu/cpu/cpu.h"

#include <cstring>

#include "base/log.h"

namespace kasou::emu::cpu {

Cpu::Cpu(PhysicalMemory const& memory, CpuPlatform& platform)
    : m_memory(memory)
    , m_platform(platform)
{
    // The reset state (Intel SDM vol. 3A, 9.1.1), with CS at F000:FFF0.
    for (auto& segment : m_state.segments) {
        segment = {};
        segment.limit = 0xFFFF;
        segment.present = 1;
        segment.s = 1;
        segment.type = 0x3;
    }
    m_state.segments[1].selector = 0xF000;
    m_state.segments[1].base = 0xFFFF0000;
    m_state.segments[1].type = 0xB;
    m_state.rip = 0xFFF0;
    m_state.tr.type = 0xB;
    m_state.tr.present = 1;
    m_state.tr.limit = 0xFFFF;
    m_state.ldt.type = 0x2;
    m_state.ldt.present = 1;
    m_state.ldt.limit = 0xFFFF;
    m_state.idt.limit = 0xFFFF;
    m_state.gdt.limit = 0xFFFF;
}

void Cpu::state_changed()
{
    flush_tlb();
    m_code.clear(); // the caller may have rewritten guest memory as well
    m_read_answer.reset();
    m_exit.reset();
}

CodeMode Cpu::code_mode() const
{
    auto const& cs = m_state.segments[1];
    if (m_state.long_mode())
        return cs.l ? CodeMode::Long64 : (cs.db ? CodeMode::Compat32 : CodeMode::Compat16);
    if (m_state.protected_mode())
        return cs.db ? CodeMode::Protected32 : CodeMode::Protected16;
    return CodeMode::Real16;
}

bool Cpu::interrupts_deliverable() const
{
    return (m_state.rflags & rflags::IF) && m_state.interrupt_shadow == 0 && !m_shutdown;
}

void Cpu::deliver_external_interrupt(u8 vector)
{
    m_state.halted = false;
    m_exception_depth = 0;
    if (!deliver(vector, false, 0, m_state.rip, false))
        deliver_pending_exception();
}

void Cpu::complete_read(u64 value)
{
    m_read_answer = value;
}

void Cpu::raise_undefined(DecodedInstruction const& instruction)
{
    if (!m_reported_undefined.test(instruction.mnemonic)) {
        m_reported_undefined.set(instruction.mnemonic);
        char const* name = ZydisMnemonicGetString(instruction.mnemonic);
        spdlog::warn("emu: instruction {} is not implemented; the guest gets #UD (reported once)", name ? name : "?");
    }
    fault(Vector::UD);
}

Block const* Cpu::fetch_block()
{
    m_code.collect();
    CodeMode mode = code_mode();
    u64 linear = m_state.segments[1].base + m_state.rip;
    if (mode != CodeMode::Long64)
        linear &= 0xFFFF'FFFF;
    u64 physical_page;
    u8* page = host_page(linear, Access::Execute, false, &physical_page);
    if (!page)
        return nullptr; // a #PF or an MMIO fetch, both in m_exception
    u64 physical = physical_page | (linear & 0xFFF);
    if (auto const* block = m_code.find(physical, mode))
        return block;

    note_code_page(physical_page >> 12);
    Block block;
    u64 offset = linear & 0xFFF;
    u64 rip = m_state.rip;
    while (block.instructions.size() < CodeCache::MAX_BLOCK_INSTRUCTIONS && offset < 0x1000) {
        u8 bytes[15];
        size_t available = std::min<size_t>(15, 0x1000 - offset);
        std::memcpy(bytes, page + offset, available);
        DecodedInstruction instruction;
        bool decoded = m_decoder.decode(mode, std::span(bytes, available), instruction);
        if (!decoded && available < 15) {
            // The instruction may go on in the next page: only the first one of a block does.
            if (!block.instructions.empty())
                break;
            u64 next_physical;
            u8* next = host_page((linear & ~u64 { 0xFFF }) + 0x1000, Access::Execute, false, &next_physical);
            if (!next)
                return nullptr;
            std::memcpy(bytes + available, next, 15 - available);
            decoded = m_decoder.decode(mode, std::span(bytes, 15), instruction);
        }
        if (!decoded) {
            if (block.instructions.empty()) {
                m_state.rip = rip;
                fault(Vector::UD);
                return nullptr;
            }
            break;
        }
        block.instructions.push_back(instruction);
        offset += instruction.length;
        if (instruction.ends_block)
            break;
    }
    return &m_code.insert(physical, mode, std::move(block));
}

CpuExit Cpu::run(u64 budget)
{
    m_exit.reset();
    u64 const stop_at = m_retired + budget;
    // Exceptions delivered count against the budget too, so a fault that repeats without end (code
    // fetched from where no RAM is, a handler that faults again) still returns to the caller.
    u64 delivered = 0;
    while (m_retired + delivered < stop_at) {
        if (m_shutdown)
            return { CpuExit::Kind::Shutdown };
        if (m_want_interrupt_window && interrupts_deliverable())
            return { CpuExit::Kind::InterruptWindow };
        if (m_state.halted)
            return { CpuExit::Kind::Halt };
        Block const* block = fetch_block();
        if (!block) {
            deliver_pending_exception();
            ++delivered;
            continue;
        }
        u64 const generation = m_code.generation();
        for (auto const& instruction : block->instructions) {
            m_instruction_rip = m_state.rip;
            bool const shadowed = m_state.interrupt_shadow != 0;
            m_leave_block = false;
            bool const done = execute(instruction);
            if (!done) {
                if (m_exit)
                    return *m_exit; // a read that leaves the CPU: the instruction runs again
                deliver_pending_exception();
                ++delivered;
                break;
            }
            ++m_retired;
            if (shadowed)
                m_state.interrupt_shadow = 0;
            if (m_exit)
                return *m_exit;
            if (m_state.halted)
                return { CpuExit::Kind::Halt };
            if (m_leave_block || m_state.rip != m_instruction_rip + instruction.length || m_code.generation() != generation
                || m_retired + delivered >= stop_at)
                break;
        }
    }
    return { CpuExit::Kind::BudgetSpent };
}

bool Cpu::execute(DecodedInstruction const& instruction)
{
    switch (instruction.mnemonic) {
    case ZYDIS_MNEMONIC_ADD:
    case ZYDIS_MNEMONIC_ADC:
    case ZYDIS_MNEMONIC_SUB:
    case ZYDIS_MNEMONIC_SBB:
    case ZYDIS_MNEMONIC_AND:
    case ZYDIS_MNEMONIC_OR:
    case ZYDIS_MNEMONIC_XOR:
    case ZYDIS_MNEMONIC_CMP:
    case ZYDIS_MNEMONIC_TEST:
    case ZYDIS_MNEMONIC_INC:
    case ZYDIS_MNEMONIC_DEC:
    case ZYDIS_MNEMONIC_NEG:
    case ZYDIS_MNEMONIC_NOT:
        return execute_alu(instruction);
    case ZYDIS_MNEMONIC_SHL:
    case ZYDIS_MNEMONIC_SHR:
    case ZYDIS_MNEMONIC_SAR:
    case ZYDIS_MNEMONIC_ROL:
    case ZYDIS_MNEMONIC_ROR:
    case ZYDIS_MNEMONIC_RCL:
    case ZYDIS_MNEMONIC_RCR:
    case ZYDIS_MNEMONIC_SHLD:
    case ZYDIS_MNEMONIC_SHRD:
        return execute_shift(instruction);
    case ZYDIS_MNEMONIC_MUL:
    case ZYDIS_MNEMONIC_IMUL:
    case ZYDIS_MNEMONIC_DIV:
    case ZYDIS_MNEMONIC_IDIV:
        return execute_multiply(instruction);
    case ZYDIS_MNEMONIC_BT:
    case ZYDIS_MNEMONIC_BTS:
    case ZYDIS_MNEMONIC_BTR:
    case ZYDIS_MNEMONIC_BTC:
    case ZYDIS_MNEMONIC_BSF:
    case ZYDIS_MNEMONIC_BSR:
    case ZYDIS_MNEMONIC_TZCNT:
    case ZYDIS_MNEMONIC_LZCNT:
    case ZYDIS_MNEMONIC_POPCNT:
    case ZYDIS_MNEMONIC_BSWAP:
        return execute_bits(instruction);
    case ZYDIS_MNEMONIC_XCHG:
    case ZYDIS_MNEMONIC_CMPXCHG:
    case ZYDIS_MNEMONIC_XADD:
    case ZYDIS_MNEMONIC_CMPXCHG8B:
    case ZYDIS_MNEMONIC_CMPXCHG16B:
        return execute_atomic(instruction);
    case ZYDIS_MNEMONIC_MOVSB:
    case ZYDIS_MNEMONIC_MOVSW:
    case ZYDIS_MNEMONIC_MOVSD:
    case ZYDIS_MNEMONIC_MOVSQ:
    case ZYDIS_MNEMONIC_STOSB:
    case ZYDIS_MNEMONIC_STOSW:
    case ZYDIS_MNEMONIC_STOSD:
    case ZYDIS_MNEMONIC_STOSQ:
    case ZYDIS_MNEMONIC_LODSB:
    case ZYDIS_MNEMONIC_LODSW:
    case ZYDIS_MNEMONIC_LODSD:
    case ZYDIS_MNEMONIC_LODSQ:
    case ZYDIS_MNEMONIC_CMPSB:
    case ZYDIS_MNEMONIC_CMPSW:
    case ZYDIS_MNEMONIC_CMPSD:
    case ZYDIS_MNEMONIC_CMPSQ:
    case ZYDIS_MNEMONIC_SCASB:
    case ZYDIS_MNEMONIC_SCASW:
    case ZYDIS_MNEMONIC_SCASD:
    case ZYDIS_MNEMONIC_SCASQ:
    case ZYDIS_MNEMONIC_INSB:
    case ZYDIS_MNEMONIC_INSW:
    case ZYDIS_MNEMONIC_INSD:
    case ZYDIS_MNEMONIC_OUTSB:
    case ZYDIS_MNEMONIC_OUTSW:
    case ZYDIS_MNEMONIC_OUTSD:
        return execute_string(instruction);
    case ZYDIS_MNEMONIC_JMP:
    case ZYDIS_MNEMONIC_CALL:
    case ZYDIS_MNEMONIC_RET:
    case ZYDIS_MNEMONIC_JB:
    case ZYDIS_MNEMONIC_JBE:
    case ZYDIS_MNEMONIC_JL:
    case ZYDIS_MNEMONIC_JLE:
    case ZYDIS_MNEMONIC_JNB:
    case ZYDIS_MNEMONIC_JNBE:
    case ZYDIS_MNEMONIC_JNL:
    case ZYDIS_MNEMONIC_JNLE:
    case ZYDIS_MNEMONIC_JNO:
    case ZYDIS_MNEMONIC_JNP:
    case ZYDIS_MNEMONIC_JNS:
    case ZYDIS_MNEMONIC_JNZ:
    case ZYDIS_MNEMONIC_JO:
    case ZYDIS_MNEMONIC_JP:
    case ZYDIS_MNEMONIC_JS:
    case ZYDIS_MNEMONIC_JZ:
    case ZYDIS_MNEMONIC_JCXZ:
    case ZYDIS_MNEMONIC_JECXZ:
    case ZYDIS_MNEMONIC_JRCXZ:
    case ZYDIS_MNEMONIC_LOOP:
    case ZYDIS_MNEMONIC_LOOPE:
    case ZYDIS_MNEMONIC_LOOPNE:
    case ZYDIS_MNEMONIC_SETB:
    case ZYDIS_MNEMONIC_SETBE:
    case ZYDIS_MNEMONIC_SETL:
    case ZYDIS_MNEMONIC_SETLE:
    case ZYDIS_MNEMONIC_SETNB:
    case ZYDIS_MNEMONIC_SETNBE:
    case ZYDIS_MNEMONIC_SETNL:
    case ZYDIS_MNEMONIC_SETNLE:
    case ZYDIS_MNEMONIC_SETNO:
    case ZYDIS_MNEMONIC_SETNP:
    case ZYDIS_MNEMONIC_SETNS:
    case ZYDIS_MNEMONIC_SETNZ:
    case ZYDIS_MNEMONIC_SETO:
    case ZYDIS_MNEMONIC_SETP:
    case ZYDIS_MNEMONIC_SETS:
    case ZYDIS_MNEMONIC_SETZ:
    case ZYDIS_MNEMONIC_CMOVB:
    case ZYDIS_MNEMONIC_CMOVBE:
    case ZYDIS_MNEMONIC_CMOVL:
    case ZYDIS_MNEMONIC_CMOVLE:
    case ZYDIS_MNEMONIC_CMOVNB:
    case ZYDIS_MNEMONIC_CMOVNBE:
    case ZYDIS_MNEMONIC_CMOVNL:
    case ZYDIS_MNEMONIC_CMOVNLE:
    case ZYDIS_MNEMONIC_CMOVNO:
    case ZYDIS_MNEMONIC_CMOVNP:
    case ZYDIS_MNEMONIC_CMOVNS:
    case ZYDIS_MNEMONIC_CMOVNZ:
    case ZYDIS_MNEMONIC_CMOVO:
    case ZYDIS_MNEMONIC_CMOVP:
    case ZYDIS_MNEMONIC_CMOVS:
    case ZYDIS_MNEMONIC_CMOVZ:
    case ZYDIS_MNEMONIC_INT:
    case ZYDIS_MNEMONIC_INT3:
    case ZYDIS_MNEMONIC_INTO:
    case ZYDIS_MNEMONIC_IRET:
    case ZYDIS_MNEMONIC_IRETD:
    case ZYDIS_MNEMONIC_IRETQ:
    case ZYDIS_MNEMONIC_ENTER:
    case ZYDIS_MNEMONIC_LEAVE:
        return execute_control(instruction);
    case ZYDIS_MNEMONIC_MOV:
    case ZYDIS_MNEMONIC_MOVZX:
    case ZYDIS_MNEMONIC_MOVSX:
    case ZYDIS_MNEMONIC_MOVSXD:
    case ZYDIS_MNEMONIC_LEA:
    case ZYDIS_MNEMONIC_PUSH:
    case ZYDIS_MNEMONIC_POP:
    case ZYDIS_MNEMONIC_PUSHF:
    case ZYDIS_MNEMONIC_PUSHFD:
    case ZYDIS_MNEMONIC_PUSHFQ:
    case ZYDIS_MNEMONIC_POPF:
    case ZYDIS_MNEMONIC_POPFD:
    case ZYDIS_MNEMONIC_POPFQ:
    case ZYDIS_MNEMONIC_CBW:
    case ZYDIS_MNEMONIC_CWDE:
    case ZYDIS_MNEMONIC_CDQE:
    case ZYDIS_MNEMONIC_CWD:
    case ZYDIS_MNEMONIC_CDQ:
    case ZYDIS_MNEMONIC_CQO:
    case ZYDIS_MNEMONIC_NOP:
    case ZYDIS_MNEMONIC_PAUSE:
    case ZYDIS_MNEMONIC_LFENCE:
    case ZYDIS_MNEMONIC_SFENCE:
    case ZYDIS_MNEMONIC_MFENCE:
    case ZYDIS_MNEMONIC_PREFETCHNTA:
    case ZYDIS_MNEMONIC_PREFETCHT0:
    case ZYDIS_MNEMONIC_PREFETCHT1:
    case ZYDIS_MNEMONIC_PREFETCHT2:
    case ZYDIS_MNEMONIC_PREFETCHW:
    case ZYDIS_MNEMONIC_CLC:
    case ZYDIS_MNEMONIC_STC:
    case ZYDIS_MNEMONIC_CMC:
    case ZYDIS_MNEMONIC_CLD:
    case ZYDIS_MNEMONIC_STD:
    case ZYDIS_MNEMONIC_LAHF:
    case ZYDIS_MNEMONIC_SAHF:
    case ZYDIS_MNEMONIC_PUSHA:
    case ZYDIS_MNEMONIC_PUSHAD:
    case ZYDIS_MNEMONIC_POPA:
    case ZYDIS_MNEMONIC_POPAD:
        return execute_data(instruction);
    default:
        return execute_system(instruction);
    }
}

} // namespace kasou::emu::cpu
