#pragma once

// The messages `create` and the container's init exchange over a SOCK_SEQPACKET socket pair: one
// kind byte and a text (an error message, a state document). A closed peer reads as an error.

#include <string>

#include "base/error.h"
#include "base/fd.h"

namespace kasou::container {

// Kinds, in the order they flow during create.
enum class SyncKind : char {
    Go = 'G', // create -> init: ID maps written, init in its cgroup; go on
    MountsDone = 'M', // init -> create: mounts made, before pivot_root: run createRuntime hooks
    HooksDone = 'H', // create -> init: hooks ran; the text is the state document for createContainer hooks
    Ready = 'R', // init -> create: about to wait on the exec FIFO
    Commit = 'C', // create -> init: state saved; stop dying with the create process
    Committed = 'c', // init -> create: done; create may exit
    Failed = 'E', // either way: the text says what failed
};

struct SyncMessage {
    SyncKind kind { SyncKind::Failed };
    std::string text;
};

ErrorOr<void> sync_send(int fd, SyncKind kind, std::string const& text = {});
// Receives one message; a Failed message comes back as an error holding its text.
ErrorOr<SyncMessage> sync_receive(int fd);
// Receives one message and checks it is of the kind expected.
ErrorOr<std::string> sync_expect(int fd, SyncKind kind);

} // namespace kasou::container
