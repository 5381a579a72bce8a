#pragma once

#include <optional>
#include <span>

#include <termios.h>

#include "base/error.h"
#include "base/fd.h"
#include "vmm/machine_config.h"

namespace kasou::vmm {

// The host end of the guest's serial console, as --serial chose it: where guest output is written
// and, when there is one, where keystrokes for the guest are read. A terminal on standard input is
// put in raw mode (no echo, no line buffering; Ctrl-C still stops kasou) and restored when the
// console is destroyed.
class Console {
public:
    static ErrorOr<Console> open(SerialSpec const& spec);
    Console(Console&&) noexcept;
    Console& operator=(Console&&) = delete;
    ~Console();

    // Writes guest output; a closed or failing sink is ignored so a guest never stalls on it.
    void write(std::span<u8 const> bytes) const;
    // The descriptor to poll for input, or -1 when there is no input.
    int input_fd() const { return m_input_fd; }
    // Where guest output goes.
    int output_fd() const { return m_output_fd; }

private:
    Console() = default;

    Fd m_owned;            // the file or socket, when not stdio
    int m_output_fd { -1 };
    int m_input_fd { -1 };
    std::optional<termios> m_saved_terminal;
};

} // namespace kasou::vmm
