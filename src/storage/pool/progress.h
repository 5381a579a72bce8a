#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "base/types.h"

namespace kasou::storage {

// Shows the progress of a long copy (import, export, resynchronization) as a bar on standard
// error, only when standard error is a terminal, at most ten times a second. Silent otherwise,
// so scripts and logs stay clean.
class TerminalProgress {
public:
    explicit TerminalProgress(std::string label);
    ~TerminalProgress();

    void update(u64 done, u64 total);

private:
    std::string m_label;
    bool m_enabled { false };
    bool m_drawn { false };
    std::chrono::steady_clock::time_point m_last;
};

} // namespace kasou::storage
