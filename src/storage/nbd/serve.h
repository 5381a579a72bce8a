#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "storage/io/raw_file_device.h"
#include "storage/nbd/server.h"

namespace kasou::storage {
class PoolHandle;
}

namespace kasou::storage::nbd {

// What `kasou nbd serve` was asked to do.
struct ServeSpec {
    std::string state_dir;
    std::vector<std::string> volumes; // "POOL/VOL": export VOL of POOL
    std::vector<std::string> pools;   // "POOL": export every volume and snapshot of POOL, each named VOL
    std::vector<std::string> files;   // "PATH" (export named after the file) or "NAME=PATH"
    ListenAddress address;
    RawFileOptions file_options;      // for --file exports
    bool read_only { false };         // every export read-only
    ServerOptions server;
    // When set, "ready" and a newline are written to this descriptor once the server listens,
    // and it is closed (`kasou pool serve --ready-fd`, for the process that started it).
    int ready_fd { -1 };
    // Make the Unix socket its owner's alone (mode 0600), as the pool's sockets are.
    bool owner_only_socket { false };
    // Called with each pool opened for `pools` before the server listens; what it returns lives
    // until the server has stopped and goes before the pool closes (`kasou pool serve` attaches
    // its vhost-user exports so).
    std::function<ErrorOr<std::shared_ptr<void>>(PoolHandle&)> attach_to_pool;
};

// Splits a --file argument into export name and path: "NAME=PATH", or PATH named by its base name.
ErrorOr<std::pair<std::string, std::string>> parse_file_export(std::string const& text);

// Opens the pools and files, serves them until SIGTERM or SIGINT, then stops cleanly (every request
// received is answered, the exports are flushed, the pools closed).
ErrorOr<void> serve(ServeSpec const& spec);

} // namespace kasou::storage::nbd
