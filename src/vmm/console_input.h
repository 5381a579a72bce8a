#pragma once

#include <functional>
#include <memory>
#include <span>

#include "base/error.h"
#include "base/types.h"

namespace boost::asio {
class io_context;
}

namespace kasou::vmm {

// Keystrokes for the guest, read from the console's input descriptor (Console::input_fd(): a
// terminal, a pipe, a file or the --serial unix socket) by a Boost.Asio event loop and handed to a
// sink (the UART's enqueue_input) a chunk at a time, on the loop's thread. The end of input, or a
// read error, ends reading for good; the guest goes on without input.
//
// The descriptor stays the caller's: it is not closed, and it is left in blocking mode (Asio reads
// it non-blocking meanwhile; a terminal shared with the shell must not stay so). A regular file,
// which epoll cannot watch, is read to its end in handlers posted to the loop. Destroy the object
// on the loop's thread, or while the loop is not running.
class ConsoleInput {
public:
    using Sink = std::function<void(std::span<u8 const>)>;

    static ErrorOr<std::unique_ptr<ConsoleInput>> start(boost::asio::io_context& io, int input_fd, Sink sink);
    ~ConsoleInput();
    ConsoleInput(ConsoleInput const&) = delete;
    ConsoleInput& operator=(ConsoleInput const&) = delete;

    // True once the input has ended (or failed): nothing more will be read.
    bool ended() const;

private:
    struct Reader;
    explicit ConsoleInput(std::shared_ptr<Reader> reader);
    std::shared_ptr<Reader> m_reader;
};

} // namespace kasou::vmm
