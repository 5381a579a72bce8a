#pragma once

#include <span>
#include <string>

#include "base/types.h"
#include "storage/nbd/export.h"
#include "storage/nbd/transport.h"

namespace kasou::storage::nbd {

// Serves one client from greeting to close: negotiation, then transmission with up to
// max_workers threads. Whatever goes wrong (a hostile byte stream, a vanished client) ends only
// this connection and is logged with `peer`; the exports are untouched.
void serve_connection(Transport& transport, std::span<Export const> exports, u32 max_workers, std::string const& peer);

} // namespace kasou::storage::nbd
