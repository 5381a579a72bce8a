#pragma once

#include <array>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "base/checked.h"
#include "base/error.h"
#include "base/types.h"

namespace kasou::vmm {

// The unsigned integer a field is stored as.
template<class T>
struct SnapshotRaw {
    using type = std::make_unsigned_t<T>;
};
template<class T>
    requires std::is_enum_v<T>
struct SnapshotRaw<T> {
    using type = std::make_unsigned_t<std::underlying_type_t<T>>;
};
template<>
struct SnapshotRaw<bool> {
    using type = u8;
};

// The two directions of a snapshot section's fields: SnapshotWriter appends values to a byte
// buffer, SnapshotReader takes them back out of one. A state struct's fields are listed once, in a
// function template over the codec (`codec.value(x)`, `codec.bytes(a)`, `codec.list(v, max, f)`),
// so what is written and what is read cannot drift apart. Fixed-width little-endian integers; a
// bool is one byte, 0 or 1; a list is a u32 count then its elements; an optional is a presence
// byte then the value.
//
// SnapshotReader never reads past its input and never allocates more than its input could hold:
// every count is checked against a stated maximum and, with checked arithmetic, against the bytes
// left. The first problem (truncation, a count or value out of range) sticks: later reads return
// zeros, and error() names the problem with its offset.
class SnapshotWriter {
public:
    static constexpr bool reading = false;

    template<class T>
        requires std::is_integral_v<T> || std::is_enum_v<T>
    void value(T const& value)
    {
        if constexpr (std::is_same_v<T, bool>)
            m_bytes.push_back(value ? 1 : 0);
        else {
            auto raw = static_cast<typename SnapshotRaw<T>::type>(value);
            for (size_t i = 0; i < sizeof raw; ++i)
                m_bytes.push_back(static_cast<u8>(raw >> (8 * i)));
        }
    }
    // An enumeration (or small integer) whose values run from 0 to `max`.
    template<class T>
    void bounded(T const& value, u64, char const*)
    {
        this->value(value);
    }
    template<size_t N>
    void bytes(std::array<u8, N> const& data)
    {
        m_bytes.insert(m_bytes.end(), data.begin(), data.end());
    }
    void blob(std::vector<u8> const& data, u64)
    {
        value(static_cast<u32>(data.size()));
        m_bytes.insert(m_bytes.end(), data.begin(), data.end());
    }
    void text(std::string const& data, u64)
    {
        value(static_cast<u32>(data.size()));
        m_bytes.insert(m_bytes.end(), data.begin(), data.end());
    }
    template<class T, class F>
    void list(std::vector<T>& items, u64, size_t, F&& each)
    {
        value(static_cast<u32>(items.size()));
        for (auto& item : items)
            each(item);
    }
    template<class T>
    void optional(std::optional<T> const& item)
    {
        value(item.has_value());
        if (item)
            value(*item);
    }

    std::vector<u8>& buffer() { return m_bytes; }

private:
    std::vector<u8> m_bytes;
};

class SnapshotReader {
public:
    static constexpr bool reading = true;

    explicit SnapshotReader(std::span<u8 const> input)
        : m_input(input)
    {
    }

    template<class T>
        requires std::is_integral_v<T> || std::is_enum_v<T>
    void value(T& out)
    {
        using Raw = typename SnapshotRaw<T>::type;
        Raw raw = 0;
        if (!take(sizeof raw))
            return void(out = T {});
        for (size_t i = 0; i < sizeof raw; ++i)
            raw = static_cast<Raw>(raw | static_cast<Raw>(static_cast<Raw>(m_input[m_offset - sizeof raw + i]) << (8 * i)));
        if constexpr (std::is_same_v<T, bool>) {
            if (raw > 1)
                fail(fmt::format("a flag holds {} (0 or 1)", raw));
            out = raw == 1;
        } else
            out = static_cast<T>(raw);
    }
    template<class T>
    void bounded(T& out, u64 max, char const* what)
    {
        value(out);
        if (static_cast<u64>(out) > max) {
            fail(fmt::format("{} is {} (at most {})", what, static_cast<u64>(out), max));
            out = T {};
        }
    }
    template<size_t N>
    void bytes(std::array<u8, N>& out)
    {
        if (take(N))
            std::memcpy(out.data(), m_input.data() + m_offset - N, N);
        else
            out.fill(0);
    }
    void blob(std::vector<u8>& out, u64 max)
    {
        u32 count = take_count(max, 1, "byte string");
        out.assign(m_input.begin() + static_cast<std::ptrdiff_t>(m_offset), m_input.begin() + static_cast<std::ptrdiff_t>(m_offset + count));
        take(count);
    }
    void text(std::string& out, u64 max)
    {
        u32 count = take_count(max, 1, "string");
        out.assign(reinterpret_cast<char const*>(m_input.data()) + m_offset, count);
        take(count);
    }
    // `min_size`: the fewest bytes one element takes, so a count the input cannot hold is refused
    // before anything is allocated.
    template<class T, class F>
    void list(std::vector<T>& items, u64 max, size_t min_size, F&& each)
    {
        u32 count = take_count(max, min_size, "list");
        items.assign(count, T {});
        for (auto& item : items)
            each(item);
    }
    template<class T>
    void optional(std::optional<T>& item)
    {
        bool present = false;
        value(present);
        if (!present)
            return item.reset();
        T inner {};
        value(inner);
        item = inner;
    }

    // Reports a value the codec read that its field cannot hold.
    void fail(std::string problem)
    {
        if (!m_error)
            m_error = fmt::format("{} (at byte {})", problem, m_offset);
        m_offset = m_input.size();
    }
    bool at_end() const { return m_offset == m_input.size(); }
    std::optional<std::string> const& error() const { return m_error; }

private:
    bool take(u64 size)
    {
        if (m_error)
            return false;
        if (size > m_input.size() - m_offset) {
            fail(fmt::format("truncated: {} more bytes needed, {} left", size, m_input.size() - m_offset));
            return false;
        }
        m_offset += size;
        return true;
    }
    u32 take_count(u64 max, size_t min_size, char const* what)
    {
        u32 count = 0;
        value(count);
        auto needed = checked_mul<u64>(count, min_size);
        if (count > max)
            fail(fmt::format("{} of {} elements (at most {})", what, count, max));
        else if (!needed || *needed > m_input.size() - m_offset)
            fail(fmt::format("{} of {} elements is longer than the {} bytes left", what, count, m_input.size() - m_offset));
        return m_error ? 0 : count;
    }

    std::span<u8 const> m_input;
    size_t m_offset { 0 };
    std::optional<std::string> m_error;
};

} // namespace kasou::vmm
