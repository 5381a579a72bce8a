#include "storage/nbd/connection.h"

#include <spdlog/spdlog.h>

#include "storage/nbd/negotiation.h"
#include "storage/nbd/transmission.h"

namespace kasou::storage::nbd {

void serve_connection(Transport& transport, std::span<Export const> exports, u32 max_workers, std::string const& peer)
{
    BufferedReader reader(transport);
    auto session = negotiate(reader, transport, exports);
    if (!session) {
        spdlog::error("nbd: {}: closing the connection during negotiation: {}", peer, session.error().to_string());
        return;
    }
    if (!*session) {
        spdlog::debug("nbd: {}: the client left during negotiation", peer);
        return;
    }
    auto const& name = (*session)->export_entry->name;
    spdlog::debug("nbd: {}: serving export '{}'", peer, name);
    Transmission transmission(reader, transport, **session, max_workers);
    if (auto result = transmission.run(); !result)
        spdlog::error("nbd: {}: closing the connection to export '{}': {}", peer, name, result.error().to_string());
    else
        spdlog::debug("nbd: {}: export '{}' disconnected", peer, name);
}

} // namespace kasou::storage::nbd
