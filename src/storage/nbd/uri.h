#pragma once

#include <string>

#include "base/error.h"
#include "base/types.h"

namespace kasou::storage::nbd {

// Where an NBD export is, as an NBD URI (NetworkBlockDevice/nbd doc/uri.md):
//   nbd://HOST[:PORT]/EXPORT             TCP (port 10809 by default; HOST may be [IPv6])
//   nbd+unix:///EXPORT?socket=PATH       a Unix socket
// EXPORT is percent-decoded and may be empty (the server's default export). TLS (nbds) and vsock
// schemes, user names and unknown query parameters are refused with an error naming them.
struct NbdUri {
    std::string host;      // TCP
    u16 port { 0 };        // TCP
    std::string unix_path; // Unix socket
    std::string export_name;

    static ErrorOr<NbdUri> parse(std::string const& text);
    bool is_unix() const { return !unix_path.empty(); }
    // The canonical form, for logs and errors.
    std::string to_string() const;
};

} // namespace kasou::storage::nbd
