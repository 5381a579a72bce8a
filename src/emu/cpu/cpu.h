#pragma once

#include <bitset>
#include <optional>
#include <span>

#include "arch/x86_64/cpu_state.h"
#include "base/types.h"
#include "emu/cpu/code_cache.h"
#include "emu/cpu/cpu_state.h"
#include "emu/cpu/decoder.h"
#include "emu/cpu/physical_memory.h"

namespace kasou::emu::cpu {

// Exception vectors (Intel SDM vol. 3A, 6.3.1).
enum class Vector : u8 { DE = 0, DB = 1, NMI = 2, BP = 3, OF = 4, BR = 5, UD = 6, NM = 7, DF = 8, TS = 10, NP = 11, SS = 12, GP = 13, PF = 14, MF = 16, AC = 17 };

// Why Cpu::run() returned.
struct CpuExit {
    enum class Kind : u8 {
        BudgetSpent, // ran the instructions it was given
        PortIo,      // IN / OUT / INS / OUTS: one item; a read is finished by complete_read()
        Mmio,        // an access where no RAM is; a read is finished by complete_read()
        Halt,        // HLT with interrupts enabled or not: the caller decides how long to wait
        Shutdown,    // triple fault
        InterruptWindow, // interrupts became deliverable (request_interrupt_window)
    };
    Kind kind { Kind::BudgetSpent };
    bool write { false };
    u8 size { 0 };
    u64 address { 0 }; // port or guest-physical address
    u64 data { 0 };    // a write's value
};

// What the CPU asks of the machine around it: the MSRs it does not keep itself (the local APIC's
// x2APIC range), and the time stamp counter.
class CpuPlatform {
public:
    virtual ~CpuPlatform() = default;
    virtual u64 tsc() = 0;
    // False: no such MSR (the guest gets #GP).
    virtual bool read_msr(u32 index, u64& value) = 0;
    virtual bool write_msr(u32 index, u64 value) = 0;
};

// The software x86-64 CPU: one vCPU's state and the interpreter that runs it over guest RAM.
// Instructions are decoded once (Decoder) and kept in a CodeCache by guest-physical address;
// guest-virtual addresses go through a small direct-mapped soft TLB to host pointers; status
// flags are lazy. Exceptions are precise: an instruction that faults leaves registers as they
// were and the exception is delivered through the IDT. An access that leaves the CPU (port I/O,
// MMIO) ends run() with an exit; a read is then finished by complete_read() and the instruction
// runs again from its start, taking that value, so every instruction stays restartable.
//
// Not thread-safe: one thread runs it. Knows nothing of KVM or of the VMM.
class Cpu {
public:
    Cpu(PhysicalMemory const& memory, CpuPlatform& platform);

    CpuState& state() { return m_state; }
    CpuState const& state() const { return m_state; }
    void set_cpuid(arch::x86_64::CpuidTable table) { m_cpuid = std::move(table); }
    // After the state or guest memory changed from outside (set_state, boot set-up, a test
    // loading code): drops cached translations and decoded code.
    void state_changed();

    // Runs up to `budget` instructions.
    CpuExit run(u64 budget);
    // The value an exit's read asked for (port input or MMIO).
    void complete_read(u64 value);

    // External interrupts (from a PIC or a local APIC): the guest can take one now.
    bool interrupts_deliverable() const;
    // Delivers external interrupt `vector` now; only when interrupts_deliverable().
    void deliver_external_interrupt(u8 vector);
    void request_interrupt_window(bool wanted) { m_want_interrupt_window = wanted; }

    // Guest linear address to guest-physical through the current paging, without side effects.
    std::optional<u64> translate(u64 linear) const;

    // Instructions retired since creation.
    u64 retired() const { return m_retired; }

    // The paging, operand and fault machinery the executor files share; public for them only.
    enum class Access : u8 { Read, Write, Execute };

private:
    struct TlbEntry {
        u64 tag { ~u64 { 0 } }; // linear page | 1 when valid
        u8* host { nullptr };   // host address of the page
        u64 physical { 0 };     // guest-physical page
        bool user { false };
    };
    static constexpr u32 TLB_SIZE = 256;

    // --- run loop (cpu.cpp) ---
    bool step_block();
    bool execute(DecodedInstruction const& instruction);
    Block const* fetch_block();
    CodeMode code_mode() const;
    void raise_undefined(DecodedInstruction const& instruction);

    // --- memory (cpu_memory.cpp) ---
    struct Translation {
        u64 physical { 0 };
        bool writable { true };
        bool user { true };
    };
    // The page walk (Intel SDM vol. 3A, 4.3-4.5). False: a page fault with `error_code`.
    bool walk(u64 linear, Access access, bool user, bool set_bits, Translation& out, u32& error_code) const;
    u8* host_page(u64 linear, Access access, bool supervisor_access, u64* physical = nullptr);
    bool read_linear(u64 linear, u8 size, u64& value, bool supervisor_access = false);
    bool write_linear(u64 linear, u8 size, u64 value, bool supervisor_access = false);
    bool read_physical_slow(u64 physical, u8 size, u64& value);
    bool write_physical_slow(u64 physical, u8 size, u64 value);
    u8* host_for_rmw(u64 linear, u8 size);
    void flush_tlb();
    void invalidate_page(u64 linear);
    void note_code_page(u64 physical_page);

    // --- segments, operands (cpu_operands.cpp) ---
    u64 linear_address(SegmentIndex segment, u64 offset) const;
    u64 effective_address(DecodedInstruction const& instruction, Operand const& operand) const;
    u64 read_gpr(Operand const& operand) const;
    void write_gpr(u8 reg, u8 size, u64 value, bool high_byte = false);
    bool read_operand(DecodedInstruction const& instruction, int index, u64& value);
    // Read-modify-write of operand `index`: `compute(old)` gives the new value (and sets flags).
    // With LOCK on RAM the update is one atomic compare-and-swap loop; precise when the write
    // faults (the flags are put back).
    template<class Compute>
    bool modify(DecodedInstruction const& instruction, int index, Compute&& compute);
    bool write_operand(DecodedInstruction const& instruction, int index, u64 value);
    bool read_memory(SegmentIndex segment, u64 offset, u8 size, u64& value) { return read_linear(linear_address(segment, offset), size, value); }
    bool write_memory(SegmentIndex segment, u64 offset, u8 size, u64 value) { return write_linear(linear_address(segment, offset), size, value); }
    u8 stack_size() const;
    bool push(u64 value, u8 size);
    bool pop(u8 size, u64& value);
    u64 next_rip(DecodedInstruction const& instruction) const { return m_state.rip + instruction.length; }
    void jump(u64 target, u8 size);

    // --- exceptions, interrupts, segment loads (cpu_exceptions.cpp) ---
    bool fault(Vector vector, u32 error_code = 0);
    bool page_fault(u64 linear, u32 error_code);
    void deliver_pending_exception();
    bool deliver(u8 vector, bool has_error, u32 error_code, u64 return_rip, bool software);
    bool read_descriptor(u16 selector, u64& low, u64& high);
    bool load_segment(SegmentIndex index, u16 selector);
    bool load_code_segment(u16 selector, u8 cpl);
    bool interrupt_return(u8 size);
    bool far_transfer(u16 selector, u64 offset, bool call, u8 size, u64 return_rip);
    bool far_return(u8 size, u16 pop_bytes);

    // --- instruction groups (execute_*.cpp) ---
    bool execute_alu(DecodedInstruction const& instruction);
    bool execute_shift(DecodedInstruction const& instruction);
    bool execute_multiply(DecodedInstruction const& instruction);
    bool execute_bits(DecodedInstruction const& instruction);
    bool execute_data(DecodedInstruction const& instruction);
    bool execute_control(DecodedInstruction const& instruction);
    bool execute_string(DecodedInstruction const& instruction);
    bool execute_system(DecodedInstruction const& instruction);
    bool execute_atomic(DecodedInstruction const& instruction);
    bool port_in(u16 port, u8 size, u64& value);
    bool port_out(u16 port, u8 size, u64 value);
    bool check_io_privilege();
    bool read_msr(u32 index, u64& value);
    bool write_msr(u32 index, u64 value);
    bool write_control(u8 index, u64 value);
    void cpuid();

    PhysicalMemory const& m_memory;
    CpuPlatform& m_platform;
    CpuState m_state;
    arch::x86_64::CpuidTable m_cpuid;
    Decoder m_decoder;
    CodeCache m_code;
    TlbEntry m_tlb_read[TLB_SIZE];
    TlbEntry m_tlb_write[TLB_SIZE];
    TlbEntry m_tlb_fetch[TLB_SIZE];

    // The instruction being executed and what it left pending.
    u64 m_instruction_rip { 0 };
    std::optional<CpuExit> m_exit; // set by an access that leaves the CPU
    // A read exit's answer, taken by the same access when the instruction runs again.
    std::optional<u64> m_read_answer;
    struct PendingException {
        u8 vector { 0 };
        bool has_error { false };
        u32 error_code { 0 };
    };
    std::optional<PendingException> m_exception;
    u8 m_exception_depth { 0 }; // nested faults while delivering: 2 -> #DF, 3 -> shutdown
    bool m_shutdown { false };
    bool m_leave_block { false }; // the instruction changed modes, tables or code
    bool m_want_interrupt_window { false };
    u64 m_retired { 0 };
    std::bitset<ZYDIS_MNEMONIC_MAX_VALUE + 1> m_reported_undefined;
};

template<class Compute>
bool Cpu::modify(DecodedInstruction const& instruction, int index, Compute&& compute)
{
    Operand const& operand = instruction.operands[index];
    if (operand.kind == Operand::Kind::Gpr) {
        write_gpr(operand.reg, operand.size, compute(read_gpr(operand)), operand.high_byte);
        return true;
    }
    if (operand.kind != Operand::Kind::Memory) {
        raise_undefined(instruction);
        return false;
    }
    u64 const linear = linear_address(operand.segment, effective_address(instruction, operand));
    u8 const size = operand.size;
    if (u8* host = host_for_rmw(linear, size)) {
        bool const locked = instruction.prefixes & DecodedInstruction::LOCK;
        auto update = [&]<class T>(T* pointer) {
            if (!locked) {
                T old;
                __builtin_memcpy(&old, pointer, sizeof(T));
                T replacement = static_cast<T>(compute(old));
                __builtin_memcpy(pointer, &replacement, sizeof(T));
                return;
            }
            T old = __atomic_load_n(pointer, __ATOMIC_SEQ_CST);
            while (!__atomic_compare_exchange_n(pointer, &old, static_cast<T>(compute(old)), false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) { }
        };
        switch (size) {
        case 1: update(host); break;
        case 2: update(reinterpret_cast<u16*>(host)); break;
        case 4: update(reinterpret_cast<u32*>(host)); break;
        default: update(reinterpret_cast<u64*>(host)); break;
        }
        return true;
    }
    if (m_exception)
        return false;
    // MMIO or across pages: not atomic.
    LazyFlags const saved = m_state.flags;
    u64 old;
    if (!read_linear(linear, size, old))
        return false;
    if (!write_linear(linear, size, compute(old))) {
        m_state.flags = saved;
        return false;
    }
    return true;
}

} // namespace kasou::emu::cpu
