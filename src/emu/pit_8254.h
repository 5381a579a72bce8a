#pragma once

#include <array>
#include <functional>
#include <mutex>
#include <optional>

#include "base/types.h"
#include "emu/pit_channel.h"

namespace kasou::emu {

// The PC's Intel 8254 PIT: three counters at ports 0x40-0x42 and the control word register at
// 0x43 (counter latch and read-back commands included), plus the bits of port 0x61 (system control
// port B) that belong to it: channel 2's gate (bit 0), the speaker enable (bit 1, stored), the
// refresh toggle (bit 4) and channel 2's OUT (bit 5). Channels 0 and 1 have their gates tied high.
//
// Time comes from `now` (nanoseconds on any monotonic clock), so tests can drive it. Channel 0's
// OUT drives IRQ 0: the PIT does not run by itself; the host arms a timer for next_irq0_deadline()
// and calls update() when it fires (update() pulses `irq0` once for the rising edges since the
// last call, so late timers coalesce ticks as a busy real machine loses them). After any write that
// reprograms channel 0, `reprogram` tells the host the new deadline.
//
// The counters run on the PIT's own time: the clock's ticks less the time spent paused. pause()
// stops it (and tells the host to disarm its timer); resume() goes on with the remaining count, so
// a long pause neither fires a burst of missed ticks nor cuts the current period short. A snapshot
// carries the PIT's time, and set_state() continues from it on any clock.
// Thread-safe: one lock; `irq0` and `reprogram` run under it and must not call back into the PIT.
class Pit8254 {
public:
    using ClockFunction = std::function<u64()>;
    using IrqFunction = std::function<void(bool level)>;
    using ReprogramFunction = std::function<void(std::optional<u64> deadline_ns)>;

    static constexpr u16 PORT = 0x40;
    static constexpr u16 PORT_COUNT = 4;
    static constexpr u16 SYSTEM_CONTROL_PORT = 0x61;
    static constexpr u64 FREQUENCY_HZ = 1'193'182;
    static constexpr u32 IRQ = 0;

    // Everything the PIT holds, for snapshots; `now` is the PIT's time when the state was taken,
    // and the channels' times are in the same ticks.
    struct State {
        u64 now { 0 };
        u64 last_update { 0 };
        bool speaker_enable { false };
        std::array<PitChannel::State, 3> channels;
        bool operator==(State const&) const = default;
    };

    Pit8254(ClockFunction now, IrqFunction irq0, ReprogramFunction reprogram);

    // Stops the PIT's time (reporting no deadline) and lets it go on from where it stopped.
    void pause();
    void resume();
    State state();
    // Checks every channel first (nothing changes on an error), then continues from the state's
    // time, paused or not as this PIT is, and reports the next deadline.
    ErrorOr<void> set_state(State const& state);

    u8 read_port(u16 port);
    void write_port(u16 port, u8 value);
    // Raises IRQ 0 (a pulse) if channel 0's OUT rose since the last update, then reports the
    // next deadline through `reprogram`.
    void update();
    // When channel 0's OUT next rises, in the clock's nanoseconds; nullopt when it will not.
    std::optional<u64> next_irq0_deadline();

    static u64 ticks_at(u64 ns);
    static u64 ns_at(u64 ticks);

private:
    // The PIT's time in ticks.
    u64 now_locked() const;
    std::optional<u64> next_deadline_locked(u64 after_ticks) const;
    void report_deadline_locked();
    void reprogrammed_locked(u64 now_ticks);

    std::mutex m_lock;
    ClockFunction m_now;
    IrqFunction m_irq0;
    ReprogramFunction m_reprogram;
    std::array<PitChannel, 3> m_channels;
    u64 m_last_update { 0 };
    u64 m_offset { 0 };                // the clock's ticks less the PIT's, modulo 2^64
    std::optional<u64> m_paused_at;    // the PIT's time while paused
    bool m_speaker_enable { false };
};

} // namespace kasou::emu
