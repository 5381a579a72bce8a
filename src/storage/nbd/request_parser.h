#pragma once

#include <span>
#include <string>

#include "base/types.h"
#include "storage/nbd/protocol.h"

namespace kasou::storage::nbd {

// What the server knows about the export a connection is bound to, for checking requests.
struct RequestLimits {
    u64 export_size { 0 };
    bool read_only { false };
    bool structured_replies { false };
    bool base_allocation { false }; // the client set the base:allocation context
    u32 max_payload { 0 };          // largest READ or WRITE length accepted
    // A longer WRITE is refused and its payload read and dropped, up to this length; beyond it
    // the connection is closed (skipping gigabytes is not worth the time).
    u32 max_skipped_payload { 0 };
};

// The verdict on one request header.
//  - Execute: well formed, inside the export, allowed: run it.
//  - Reject: well framed but not acceptable (out of range, read-only, bad flags): skip its payload
//    and reply with `error`; the connection goes on, as the protocol asks.
//  - Disconnect: the byte stream cannot be trusted any more (bad magic, an unknown command whose
//    payload size is unknowable, a write payload over max_skipped_payload): log `reason`, close the
//    connection.
struct RequestCheck {
    enum class Verdict : u8 {
        Execute,
        Reject,
        Disconnect,
    };
    Verdict verdict { Verdict::Execute };
    u32 error { 0 };        // NBD error value for Reject
    u32 payload_length { 0 }; // bytes following the header that belong to this request
    std::string reason;     // why, for Reject and Disconnect
};

// Validates a decoded request against the export and the negotiated options. Pure and total: any
// 28 bytes and any limits give a verdict (the libFuzzer target drives it with arbitrary input).
RequestCheck check_request(Request const& request, RequestLimits const& limits);

} // namespace kasou::storage::nbd
