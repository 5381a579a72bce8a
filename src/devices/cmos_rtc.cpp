#include "devices/cmos_rtc.h"

#include <algorithm>

namespace kasou::devices {

namespace {

// Register indexes (MC146818A data sheet; PC CMOS memory map).
constexpr u8 SECONDS = 0x00;
constexpr u8 MINUTES = 0x02;
constexpr u8 HOURS = 0x04;
constexpr u8 DAY_OF_WEEK = 0x06;
constexpr u8 DAY_OF_MONTH = 0x07;
constexpr u8 MONTH = 0x08;
constexpr u8 YEAR = 0x09;
constexpr u8 STATUS_A = 0x0A;
constexpr u8 STATUS_B = 0x0B;
constexpr u8 STATUS_C = 0x0C;
constexpr u8 STATUS_D = 0x0D;
constexpr u8 BASE_MEMORY_LOW = 0x15;
constexpr u8 EXTENDED_MEMORY_LOW = 0x17;
constexpr u8 EXTENDED_MEMORY_COPY_LOW = 0x30;
constexpr u8 CENTURY = 0x32;
constexpr u8 MEMORY_ABOVE_16M_LOW = 0x34;
constexpr u8 MEMORY_ABOVE_4G_LOW = 0x5B;
constexpr u8 STATUS_B_24_HOUR = 0x02;
constexpr u8 STATUS_D_VALID = 0x80;
constexpr u8 STATUS_A_DIVIDER = 0x26; // 32.768 kHz time base, 1024 Hz rate

u8 bcd(int value) { return static_cast<u8>(((value / 10) << 4) | (value % 10)); }

} // namespace

CmosRtc::CmosRtc(u64 low_memory_end, u64 high_memory_size, NowFunction now)
    : m_now(std::move(now))
{
    auto put16 = [&](u8 index, u64 value) {
        value = std::min<u64>(value, 0xFFFF);
        m_bytes[index] = static_cast<u8>(value);
        m_bytes[index + 1] = static_cast<u8>(value >> 8);
    };
    constexpr u64 one_mib = 1 << 20;
    constexpr u64 sixteen_mib = 16 << 20;
    put16(BASE_MEMORY_LOW, 640);
    u64 extended_kib = low_memory_end > one_mib ? (std::min(low_memory_end, 64 * one_mib) - one_mib) / 1024 : 0;
    put16(EXTENDED_MEMORY_LOW, extended_kib);
    put16(EXTENDED_MEMORY_COPY_LOW, extended_kib);
    put16(MEMORY_ABOVE_16M_LOW, low_memory_end > sixteen_mib ? (low_memory_end - sixteen_mib) / (64 * 1024) : 0);
    u64 high_blocks = high_memory_size / (64 * 1024);
    m_bytes[MEMORY_ABOVE_4G_LOW] = static_cast<u8>(high_blocks);
    m_bytes[MEMORY_ABOVE_4G_LOW + 1] = static_cast<u8>(high_blocks >> 8);
    m_bytes[MEMORY_ABOVE_4G_LOW + 2] = static_cast<u8>(high_blocks >> 16);
    m_bytes[STATUS_A] = STATUS_A_DIVIDER;
    m_bytes[STATUS_B] = STATUS_B_24_HOUR;
    m_bytes[STATUS_D] = STATUS_D_VALID;
}

void CmosRtc::read(u64 offset, std::span<u8> data)
{
    std::lock_guard guard(m_lock);
    std::fill(data.begin(), data.end(), 0xFF);
    if (!data.empty() && offset == 1)
        data[0] = read_data();
}

void CmosRtc::write(u64 offset, std::span<u8 const> data)
{
    std::lock_guard guard(m_lock);
    if (data.empty())
        return;
    if (offset == 0) {
        m_index = data[0] & 0x7F; // bit 7 masks NMIs; there is nothing to mask here
        return;
    }
    bool is_time = m_index <= YEAR || m_index == CENTURY || m_index == STATUS_C || m_index == STATUS_D;
    if (offset == 1 && !is_time)
        m_bytes[m_index] = data[0];
}

u8 CmosRtc::read_data()
{
    std::time_t now = m_now();
    std::tm time {};
    gmtime_r(&now, &time);
    switch (m_index) {
    case SECONDS:
        return bcd(time.tm_sec);
    case MINUTES:
        return bcd(time.tm_min);
    case HOURS:
        return bcd(time.tm_hour);
    case DAY_OF_WEEK:
        return bcd(time.tm_wday + 1);
    case DAY_OF_MONTH:
        return bcd(time.tm_mday);
    case MONTH:
        return bcd(time.tm_mon + 1);
    case YEAR:
        return bcd(time.tm_year % 100);
    case CENTURY:
        return bcd((time.tm_year + 1900) / 100);
    case STATUS_C:
        return 0;
    default:
        return m_bytes[m_index];
    }
}

CmosRtc::State CmosRtc::state()
{
    std::lock_guard guard(m_lock);
    return State { m_index, m_bytes };
}

void CmosRtc::set_state(State const& state)
{
    std::lock_guard guard(m_lock);
    m_index = state.index;
    m_bytes = state.bytes;
}

} // namespace kasou::devices
