#pragma once

#include <mutex>
#include <optional>

#include "arch/x86_64/cpu_state.h"
#include "base/types.h"

namespace kasou::emu {

// A local APIC for the software CPU (Intel SDM vol. 3A, chapter 11): the xAPIC register page and
// the x2APIC MSRs over the same registers, IRR / ISR / TMR, task priority, EOI, the timer
// (one-shot and periodic; a 1 GHz bus clock, as KVM's) and the interrupt command register.
// Interrupts accepted from other threads (MSIs from device threads, IPIs from other vCPUs) take the
// one lock; everything else runs on the owning vCPU's thread under the same lock.
class Lapic {
public:
    static constexpr u64 DEFAULT_BASE = 0xFEE0'0000;

    // An interrupt command written to the ICR, for the VM to route.
    struct Ipi {
        u32 destination { 0 };
        u8 vector { 0 };
        u8 delivery_mode { 0 }; // 0 fixed, 4 NMI, 5 INIT, 6 SIPI
        u8 shorthand { 0 };     // 0 none, 1 self, 2 all including self, 3 all excluding self
        bool logical { false };
    };
    // What a register write asks of the VM besides itself.
    struct WriteEffect {
        std::optional<u8> level_eoi; // an EOI of a level-triggered vector: the IOAPIC's business
        std::optional<Ipi> ipi;
    };

    explicit Lapic(u32 id);

    u32 id() const { return m_id; }
    // xAPIC MMIO: 32-bit registers at 16-byte offsets of the 4 KiB page.
    u32 read(u32 offset, u64 now_ns);
    WriteEffect write(u32 offset, u32 value, u64 now_ns);
    // x2APIC MSRs 0x800-0x8FF; false for an index that is no register (#GP).
    bool read_msr(u32 index, u64& value, u64 now_ns);
    bool write_msr(u32 index, u64 value, u64 now_ns, WriteEffect& effect);

    // An interrupt arrives (fixed delivery): sets IRR, and TMR when level-triggered.
    void accept(u8 vector, bool level);
    // The highest pending vector above the in-service priority, moved to ISR; nullopt if none.
    std::optional<u8> acknowledge();
    bool has_pending();
    // Fires the timer if its time has come; the time it fires next, if armed.
    std::optional<u64> poll_timer(u64 now_ns);

    arch::x86_64::LapicRegisters registers();
    void set_registers(arch::x86_64::LapicRegisters const& registers, u64 now_ns);

private:
    u32 get(u32 offset) const;
    void put(u32 offset, u32 value);
    bool bit(u32 base, u8 vector) const;
    void set_bit(u32 base, u8 vector, bool value);
    int highest(u32 base) const;
    u64 timer_period_ns() const;
    void arm_timer(u64 now_ns);

    u32 const m_id;
    std::mutex m_lock;
    arch::x86_64::LapicRegisters m_page {};
    std::optional<u64> m_deadline_ns; // while the timer counts
};

} // namespace kasou::emu
