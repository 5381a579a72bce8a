#pragma once

#include <optional>

#include "base/error.h"
#include "base/types.h"

namespace kasou::emu {

// One counter of an Intel 8254 programmable interval timer (8254 datasheet, order 231164): its
// control word (read/write mode, mode 0-5, binary or BCD), count register, counter latch, status
// latch for the read-back command, gate input and OUT output. Time is the PIT's input clock in
// ticks (1.193182 MHz on a PC), given by the caller at each call, so the counter is a pure function
// of the ticks since it was loaded: no state advances by itself, and nothing loops on guest values.
// Simplifications: a count takes effect at the tick it is written (the datasheet's extra CLK pulse
// to load it is not modelled) and a new count written in mode 2 or 3 restarts the period at once
// rather than at the end of the current one. Holds no lock: Pit8254 guards its channels.
class PitChannel {
public:
    // Everything the counter holds, for snapshots. Times (start, held) are in the ticks of the
    // clock its owner passes in.
    struct State {
        u8 access { 3 };
        u8 mode { 0 };
        bool bcd { false };
        bool gate { false };
        bool null_count { true };
        u8 phase { 0 }; // 0: idle, 1: counting, 2: held
        bool loaded { false };
        u32 reload { 65536 };
        u64 start { 0 };
        u64 held { 0 };
        u8 write_low { 0 };
        bool write_high_next { false };
        bool read_high_next { false };
        std::optional<u16> latched_count;
        bool latched_high_next { false };
        std::optional<u8> latched_status;
        bool operator==(State const&) const = default;
    };

    State state() const;
    // Refuses values no sequence of writes could give (an access mode, mode, phase or count out of
    // range); `what` names the counter in the error.
    ErrorOr<void> set_state(State const& state, char const* what);

    // Control word with SC (bits 7-6) already decoded: RW (5-4), M (3-1), BCD (0).
    void write_control(u8 value, u64 now);
    void latch_count(u64 now);
    void latch_status(u64 now);
    void write_data(u8 value, u64 now);
    u8 read_data(u64 now);
    void set_gate(bool level, u64 now);
    bool gate() const { return m_gate; }
    bool out(u64 now) const;
    // The first tick after `after` at which OUT rises, if it will without further writes.
    std::optional<u64> next_rising_edge(u64 after) const;
    u8 mode() const { return m_mode; }

private:
    enum class Phase {
        Idle,     // no count loaded, or waiting for a gate trigger (modes 1 and 5)
        Counting, // counting since m_start
        Held,     // gate low in mode 0 or 4: the count stands at m_held ticks elapsed
    };
    u64 elapsed(u64 now) const;
    u32 count(u64 now) const;
    void load(u32 value, u64 now);
    void start(u64 now);
    u32 modulus() const { return m_bcd ? 10000 : 65536; }

    u8 m_access { 3 }; // RW field: 1 LSB only, 2 MSB only, 3 LSB then MSB
    u8 m_mode { 0 };
    bool m_bcd { false };
    bool m_gate { false };
    bool m_null_count { true };
    Phase m_state { Phase::Idle };
    bool m_loaded { false };
    u32 m_reload { 65536 }; // 1..65536 (1..10000 in BCD)
    u64 m_start { 0 };
    u64 m_held { 0 };
    u8 m_write_low { 0 };
    bool m_write_high_next { false };
    bool m_read_high_next { false };
    std::optional<u16> m_latched_count;
    bool m_latched_high_next { false };
    std::optional<u8> m_latched_status;
};

} // namespace kasou::emu
