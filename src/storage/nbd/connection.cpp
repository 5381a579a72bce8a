#include "storage/nbd/connection.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "storage/nbd/negotiation.h"
#include "storage/nbd/transmission.h"

namespace kasou::storage::nbd {

u32 max_payload_for(MemoryBudget const& budget)
{
    // A multiple of 4096, so of every minimum block size the server advertises (512 or 4096).
    u64 fitting = budget.limit() / 4096 * 4096;
    return static_cast<u32>(std::min<u64>(MAX_PAYLOAD, fitting));
}

namespace {

void run_transmission(BufferedReader& reader, Transport& transport, Session const& session, ConnectionEnvironment const& environment,
    std::string const& peer)
{
    auto const& name = session.export_entry->name;
    spdlog::debug("nbd: {}: serving export '{}'", peer, name);
    Transmission transmission(reader, transport, session, environment, max_payload_for(environment.budget));
    if (auto result = transmission.run(); !result)
        spdlog::error("nbd: {}: closing the connection to export '{}': {}", peer, name, result.error().to_string());
    else
        spdlog::debug("nbd: {}: export '{}' disconnected", peer, name);
}

} // namespace

void serve_connection(Transport& transport, std::span<Export const> exports, ConnectionEnvironment const& environment, std::string const& peer)
{
    BufferedReader reader(transport);
    u32 const max_payload = max_payload_for(environment.budget);
    auto session = negotiate(reader, transport, exports, max_payload);
    if (!session) {
        spdlog::error("nbd: {}: closing the connection during negotiation: {}", peer, session.error().to_string());
        return;
    }
    if (!*session) {
        spdlog::debug("nbd: {}: the client left during negotiation", peer);
        return;
    }
    environment.monitor.negotiated();
    run_transmission(reader, transport, **session, environment, peer);
}

void serve_session(Transport& transport, Session const& session, ConnectionEnvironment const& environment, std::string const& peer)
{
    BufferedReader reader(transport);
    run_transmission(reader, transport, session, environment, peer);
}

} // namespace kasou::storage::nbd
