#pragma once

#include <span>
#include <string>

#include "base/types.h"

namespace kasou::storage::nbd {

// One transmission-phase request header as it came off the wire ("Request message").
struct Request {
    u32 magic { 0 };
    u16 flags { 0 };
    u16 type { 0 };
    u64 cookie { 0 };
    u64 offset { 0 };
    u32 length { 0 };
};

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

// Decodes the fixed 28-byte header; no validation.
Request decode_request(std::span<u8 const, 28> header);

// Validates a decoded request against the export and the negotiated options. Pure and total: any
// 28 bytes and any limits give a verdict (the libFuzzer target drives it with arbitrary input).
RequestCheck check_request(Request const& request, RequestLimits const& limits);

// "NBD_CMD_READ" and so on, or "command 42".
std::string command_name(u16 type);

} // namespace kasou::storage::nbd
