#include "emu/pit_8254.h"

#include "base/try.h"

namespace kasou::emu {

namespace {

constexpr u64 NS_PER_SECOND = 1'000'000'000;
// Port 0x61's refresh request bit toggles every 15.085 us on a PC (DRAM refresh, through 8254
// channel 1); BIOSes and old kernels time short delays with it.
constexpr u64 REFRESH_PERIOD_NS = 15'085;
constexpr u8 PORT_B_GATE2 = 0x01;
constexpr u8 PORT_B_SPEAKER = 0x02;
constexpr u8 PORT_B_REFRESH = 0x10;
constexpr u8 PORT_B_OUT2 = 0x20;
// 8254 datasheet, control word: SC field values and the read-back command's bits.
constexpr u8 SC_READ_BACK = 3;
constexpr u8 READ_BACK_NO_COUNT = 0x20;
constexpr u8 READ_BACK_NO_STATUS = 0x10;

} // namespace

Pit8254::Pit8254(ClockFunction now, IrqFunction irq0, ReprogramFunction reprogram)
    : m_now(std::move(now))
    , m_irq0(std::move(irq0))
    , m_reprogram(std::move(reprogram))
{
    m_channels[0].set_gate(true, 0);
    m_channels[1].set_gate(true, 0);
}

// Whole seconds apart from the remainder, so no product exceeds 64 bits.
u64 Pit8254::ticks_at(u64 ns) { return ns / NS_PER_SECOND * FREQUENCY_HZ + ns % NS_PER_SECOND * FREQUENCY_HZ / NS_PER_SECOND; }

u64 Pit8254::ns_at(u64 ticks)
{
    // The first nanosecond whose tick count reaches `ticks`.
    return ticks / FREQUENCY_HZ * NS_PER_SECOND + (ticks % FREQUENCY_HZ * NS_PER_SECOND + FREQUENCY_HZ - 1) / FREQUENCY_HZ;
}

u8 Pit8254::read_port(u16 port)
{
    std::lock_guard guard(m_lock);
    u64 now_ns = m_now();
    u64 now = now_locked();
    if (port == SYSTEM_CONTROL_PORT) {
        auto& channel2 = m_channels[2];
        return static_cast<u8>((channel2.gate() ? PORT_B_GATE2 : 0) | (m_speaker_enable ? PORT_B_SPEAKER : 0)
            | ((now_ns / REFRESH_PERIOD_NS) & 1 ? PORT_B_REFRESH : 0) | (channel2.out(now) ? PORT_B_OUT2 : 0));
    }
    if (port >= PORT && port < PORT + 3)
        return m_channels[port - PORT].read_data(now);
    return 0xff; // the control word register is write-only
}

void Pit8254::write_port(u16 port, u8 value)
{
    std::lock_guard guard(m_lock);
    u64 now = now_locked();
    if (port == SYSTEM_CONTROL_PORT) {
        m_channels[2].set_gate(value & PORT_B_GATE2, now);
        m_speaker_enable = value & PORT_B_SPEAKER;
        return;
    }
    if (port >= PORT && port < PORT + 3) {
        m_channels[port - PORT].write_data(value, now);
        if (port == PORT)
            reprogrammed_locked(now);
        return;
    }
    if (port != PORT + 3)
        return;
    u8 select = value >> 6;
    if (select == SC_READ_BACK) {
        for (u32 index = 0; index < 3; ++index) {
            if (!(value & (2 << index)))
                continue;
            if (!(value & READ_BACK_NO_COUNT))
                m_channels[index].latch_count(now);
            if (!(value & READ_BACK_NO_STATUS))
                m_channels[index].latch_status(now);
        }
        return;
    }
    if ((value & 0x30) == 0)
        m_channels[select].latch_count(now);
    else {
        m_channels[select].write_control(value, now);
        if (select == 0)
            reprogrammed_locked(now);
    }
}

u64 Pit8254::now_locked() const { return m_paused_at ? *m_paused_at : ticks_at(m_now()) - m_offset; }

void Pit8254::reprogrammed_locked(u64 now_ticks)
{
    m_last_update = now_ticks;
    report_deadline_locked();
}

std::optional<u64> Pit8254::next_deadline_locked(u64 after_ticks) const
{
    auto edge = m_channels[0].next_rising_edge(after_ticks);
    if (!edge)
        return std::nullopt;
    return ns_at(*edge + m_offset);
}

void Pit8254::report_deadline_locked() { m_reprogram(m_paused_at ? std::nullopt : next_deadline_locked(m_last_update)); }

void Pit8254::update()
{
    std::lock_guard guard(m_lock);
    u64 now = now_locked();
    auto edge = m_channels[0].next_rising_edge(m_last_update);
    if (edge && *edge <= now) {
        m_irq0(true);
        m_irq0(false);
    }
    if (now > m_last_update)
        m_last_update = now;
    report_deadline_locked();
}

void Pit8254::pause()
{
    std::lock_guard guard(m_lock);
    if (m_paused_at)
        return;
    m_paused_at = now_locked();
    report_deadline_locked();
}

void Pit8254::resume()
{
    std::lock_guard guard(m_lock);
    if (!m_paused_at)
        return;
    m_offset = ticks_at(m_now()) - *m_paused_at;
    m_paused_at.reset();
    report_deadline_locked();
}

Pit8254::State Pit8254::state()
{
    std::lock_guard guard(m_lock);
    return State { now_locked(), m_last_update, m_speaker_enable, { m_channels[0].state(), m_channels[1].state(), m_channels[2].state() } };
}

ErrorOr<void> Pit8254::set_state(State const& state)
{
    std::lock_guard guard(m_lock);
    auto channels = m_channels;
    for (u32 index = 0; index < channels.size(); ++index)
        TRY(channels[index].set_state(state.channels[index], std::array { "PIT channel 0", "PIT channel 1", "PIT channel 2" }[index]));
    m_channels = channels;
    m_last_update = state.last_update;
    m_speaker_enable = state.speaker_enable;
    if (m_paused_at)
        m_paused_at = state.now;
    else
        m_offset = ticks_at(m_now()) - state.now;
    report_deadline_locked();
    return {};
}

std::optional<u64> Pit8254::next_irq0_deadline()
{
    std::lock_guard guard(m_lock);
    return next_deadline_locked(m_last_update);
}

} // namespace kasou::emu
