#pragma once

#include <string>

#include "base/error.h"
#include "base/types.h"

namespace kasou::vmm {

// The most request queues a --disk may ask for.
constexpr u16 MAX_DISK_QUEUES = 16;

// One --disk option: `PATH[,ro][,serial=S][,queues=N]` for a raw image file or block device, or
// `vol:POOL/VOL[,ro][,serial=S][,queues=N]` for a thin volume of a kasou pool, or
// `nbd:URI[,ro][,serial=S][,queues=N]` for an export of an NBD server (storage/nbd/uri.h).

struct DiskSpec {
    enum class Kind { RawFile, Volume, Nbd };
    Kind kind { Kind::RawFile };
    std::string path;   // RawFile; Nbd: the URI
    std::string pool;   // Volume
    std::string volume; // Volume
    bool read_only { false };
    std::string serial;
    u16 queues { 1 }; // virtio-blk request queues (the guest spreads them over its CPUs)

    static ErrorOr<DiskSpec> parse(std::string const& text);
};

// One --net option: `tap=NAME[,mac=52:54:00:12:34:56]`, a virtio-net device on a tap interface.
struct NetSpec {
    std::string tap;
    std::string mac; // empty: a random locally administered address

    static ErrorOr<NetSpec> parse(std::string const& text);
};

// The --vsock option: `cid=N,uds=PATH[,max_connections=N]`, a virtio-vsock device whose host side
// is Unix sockets at PATH (connect there and send "CONNECT PORT") and PATH_PORT (for the guest's
// connections). max_connections is checked by the device (0: its default).
struct VsockSpec {
    u32 guest_cid { 0 };
    std::string uds_path;
    size_t max_connections { 0 };

    static ErrorOr<VsockSpec> parse(std::string const& text);
};

} // namespace kasou::vmm
