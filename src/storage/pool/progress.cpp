#include "storage/pool/progress.h"

#include <unistd.h>

#include <fmt/format.h>

#include "base/size.h"

namespace kasou::storage {

TerminalProgress::TerminalProgress(std::string label)
    : m_label(std::move(label))
    , m_enabled(::isatty(STDERR_FILENO) == 1)
{
}

TerminalProgress::~TerminalProgress()
{
    if (m_drawn)
        fmt::print(stderr, "\n");
}

void TerminalProgress::update(u64 done, u64 total)
{
    if (!m_enabled || total == 0)
        return;
    auto now = std::chrono::steady_clock::now();
    if (m_drawn && done < total && now - m_last < std::chrono::milliseconds(100))
        return;
    m_last = now;
    m_drawn = true;
    constexpr int WIDTH = 30;
    int filled = static_cast<int>(done * WIDTH / total);
    fmt::print(stderr, "\r{} [{}{}] {:3}%  {} / {}   ", m_label, std::string(static_cast<size_t>(filled), '#'),
        std::string(static_cast<size_t>(WIDTH - filled), ' '), done * 100 / total, format_size(done), format_size(total));
    std::fflush(stderr);
}

} // namespace kasou::storage
