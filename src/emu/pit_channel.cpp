#include "emu/pit_channel.h"

#include <fmt/format.h>

namespace kasou::emu {

namespace {

constexpr u8 ACCESS_LSB = 1;
constexpr u8 ACCESS_MSB = 2;
constexpr u8 ACCESS_WORD = 3;
// 8254 datasheet, "Read-back command": status byte bits.
constexpr u8 STATUS_OUT = 0x80;
constexpr u8 STATUS_NULL_COUNT = 0x40;

u32 from_bcd(u32 value)
{
    // Digits above 9 are taken at face value: the result stays below 16 * 1111 < 65536.
    return (value >> 12 & 0xf) * 1000 + (value >> 8 & 0xf) * 100 + (value >> 4 & 0xf) * 10 + (value & 0xf);
}

u32 to_bcd(u32 value)
{
    value %= 10000;
    return (value / 1000) << 12 | (value / 100 % 10) << 8 | (value / 10 % 10) << 4 | value % 10;
}

} // namespace

void PitChannel::write_control(u8 value, u64)
{
    m_access = (value >> 4) & 3;
    m_mode = (value >> 1) & 7;
    if (m_mode > 5)
        m_mode -= 4; // modes 6 and 7 are modes 2 and 3 (datasheet: "X10", "X11")
    m_bcd = value & 1;
    m_state = Phase::Idle;
    m_loaded = false;
    m_null_count = true;
    m_write_high_next = false;
    m_read_high_next = false;
    m_latched_count.reset();
    m_latched_status.reset();
}

void PitChannel::latch_count(u64 now)
{
    if (m_latched_count)
        return; // a second latch before the first is read is ignored
    m_latched_count = static_cast<u16>(count(now));
    m_latched_high_next = false;
}

void PitChannel::latch_status(u64 now)
{
    if (m_latched_status)
        return;
    m_latched_status = static_cast<u8>((out(now) ? STATUS_OUT : 0) | (m_null_count ? STATUS_NULL_COUNT : 0) | m_access << 4 | m_mode << 1
        | (m_bcd ? 1 : 0));
}

void PitChannel::write_data(u8 value, u64 now)
{
    u32 written;
    switch (m_access) {
    case ACCESS_LSB:
        written = value;
        break;
    case ACCESS_MSB:
        written = static_cast<u32>(value) << 8;
        break;
    default:
        if (!m_write_high_next) {
            m_write_low = value;
            m_write_high_next = true;
            // Mode 0: writing the first byte stops the count and drops OUT.
            if (m_mode == 0) {
                m_state = Phase::Idle;
                m_loaded = false;
            }
            return;
        }
        m_write_high_next = false;
        written = m_write_low | static_cast<u32>(value) << 8;
        break;
    }
    load(written, now);
}

void PitChannel::load(u32 value, u64 now)
{
    u32 reload = m_bcd ? from_bcd(value) : value;
    m_reload = reload == 0 ? modulus() : reload; // 0 is the largest count
    m_loaded = true;
    m_null_count = true;
    if (m_mode == 1 || m_mode == 5) {
        if (m_state != Phase::Counting)
            m_state = Phase::Idle; // waits for a rising gate edge
        return;
    }
    if (m_gate)
        start(now);
    else {
        // Modes 0 and 4 count once the gate rises; 2 and 3 start over then.
        m_state = m_mode == 2 || m_mode == 3 ? Phase::Idle : Phase::Held;
        m_held = 0;
    }
}

void PitChannel::start(u64 now)
{
    m_state = Phase::Counting;
    m_start = now;
    m_null_count = false;
}

u64 PitChannel::elapsed(u64 now) const
{
    switch (m_state) {
    case Phase::Counting:
        return now >= m_start ? now - m_start : 0;
    case Phase::Held:
        return m_held;
    default:
        return 0;
    }
}

u32 PitChannel::count(u64 now) const
{
    if (m_state == Phase::Idle && !m_loaded)
        return 0;
    u64 d = elapsed(now);
    u64 n = m_reload;
    u64 value;
    switch (m_mode) {
    case 2:
        value = n - d % n;
        break;
    case 3:
        // Decrements by two each tick, reloading twice per period.
        value = n - (2 * d) % n;
        break;
    default:
        value = (n + modulus() - d % modulus()) % modulus();
        break;
    }
    value %= modulus();
    return m_bcd ? to_bcd(static_cast<u32>(value)) : static_cast<u32>(value);
}

bool PitChannel::out(u64 now) const
{
    if (m_state == Phase::Idle)
        return m_mode != 0;
    u64 d = elapsed(now);
    u64 n = m_reload;
    switch (m_mode) {
    case 0:
    case 1:
        return d >= n;
    case 2:
        return d % n != n - 1;
    case 3:
        return d % n < (n + 1) / 2;
    default: // 4, 5: low for the one tick at the terminal count
        return d != n;
    }
}

std::optional<u64> PitChannel::next_rising_edge(u64 after) const
{
    if (m_state != Phase::Counting)
        return std::nullopt;
    u64 n = m_reload;
    u64 d = after >= m_start ? after - m_start : 0;
    switch (m_mode) {
    case 0:
    case 1:
        return d < n ? std::optional(m_start + n) : std::nullopt;
    case 2:
    case 3:
        return m_start + (d / n + 1) * n;
    default:
        return d < n + 1 ? std::optional(m_start + n + 1) : std::nullopt;
    }
}

u8 PitChannel::read_data(u64 now)
{
    if (m_latched_status) {
        u8 status = *m_latched_status;
        m_latched_status.reset();
        return status;
    }
    auto byte = [&](u16 value, bool& high_next) -> u8 {
        switch (m_access) {
        case ACCESS_LSB:
            return static_cast<u8>(value);
        case ACCESS_MSB:
            return static_cast<u8>(value >> 8);
        default:
            high_next = !high_next;
            return static_cast<u8>(high_next ? value : value >> 8);
        }
    };
    if (m_latched_count) {
        u8 value = byte(*m_latched_count, m_latched_high_next);
        if (m_access != ACCESS_WORD || !m_latched_high_next)
            m_latched_count.reset();
        return value;
    }
    return byte(static_cast<u16>(count(now)), m_read_high_next);
}

void PitChannel::set_gate(bool level, u64 now)
{
    bool rising = level && !m_gate;
    bool falling = !level && m_gate;
    m_gate = level;
    switch (m_mode) {
    case 0:
    case 4:
        if (falling && m_state == Phase::Counting) {
            m_held = elapsed(now);
            m_state = Phase::Held;
        } else if (rising && m_state == Phase::Held) {
            m_state = Phase::Counting;
            m_start = now - m_held;
            m_null_count = false;
        }
        break;
    case 2:
    case 3:
        if (falling)
            m_state = Phase::Idle; // OUT high at once, counting stops
        else if (rising && m_loaded)
            start(now);
        break;
    default: // 1, 5: a rising edge (re)triggers
        if (rising && m_loaded)
            start(now);
        break;
    }
}

PitChannel::State PitChannel::state() const
{
    return State { m_access, m_mode, m_bcd, m_gate, m_null_count, static_cast<u8>(m_state), m_loaded, m_reload, m_start, m_held,
        m_write_low, m_write_high_next, m_read_high_next, m_latched_count, m_latched_high_next, m_latched_status };
}

ErrorOr<void> PitChannel::set_state(State const& state, char const* what)
{
    if (state.access < ACCESS_LSB || state.access > ACCESS_WORD)
        return make_error(ErrorKind::InvalidInput, fmt::format("{}: access mode {} (1-3)", what, state.access));
    if (state.mode > 5)
        return make_error(ErrorKind::InvalidInput, fmt::format("{}: mode {} (0-5)", what, state.mode));
    if (state.phase > static_cast<u8>(Phase::Held))
        return make_error(ErrorKind::InvalidInput, fmt::format("{}: phase {} (0-2)", what, state.phase));
    if (state.reload == 0 || state.reload > (state.bcd ? 10000u : 65536u))
        return make_error(ErrorKind::InvalidInput, fmt::format("{}: count {} out of range", what, state.reload));
    m_access = state.access;
    m_mode = state.mode;
    m_bcd = state.bcd;
    m_gate = state.gate;
    m_null_count = state.null_count;
    m_state = static_cast<Phase>(state.phase);
    m_loaded = state.loaded;
    m_reload = state.reload;
    m_start = state.start;
    m_held = state.held;
    m_write_low = state.write_low;
    m_write_high_next = state.write_high_next;
    m_read_high_next = state.read_high_next;
    m_latched_count = state.latched_count;
    m_latched_high_next = state.latched_high_next;
    m_latched_status = state.latched_status;
    return {};
}

} // namespace kasou::emu
