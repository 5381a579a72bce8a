#pragma once

// linux.seccomp through libseccomp: the profile compiled to a BPF filter before the program runs,
// with every action of runtime-spec (kill, kill process/thread, trap, errno, trace, allow, log,
// notify). With notify, the filter's listener descriptor goes to linux.seccomp.listenerPath with
// SCM_RIGHTS and the container process state (runtime-spec config-linux.md "Seccomp").

#include <string>

#include "base/error.h"
#include "base/fd.h"
#include "container/config.h"

using scmp_filter_ctx = void*;

namespace kasou::container {

// Owns a libseccomp context; load() installs it on the calling thread. Move-only. System call
// names the kernel or libseccomp does not know are skipped, as profiles list calls of many kernels.
class SeccompFilter {
public:
    static ErrorOr<SeccompFilter> build(Seccomp const& profile);
    ~SeccompFilter();
    SeccompFilter(SeccompFilter&& other) noexcept;
    SeccompFilter& operator=(SeccompFilter&& other) = delete;
    SeccompFilter(SeccompFilter const&) = delete;

    bool notifies() const { return m_notify; }
    // Connects to listenerPath now (before pivot_root hides the host's paths).
    ErrorOr<void> connect_listener(std::string const& path);
    // Installs the filter; with notify, sends its listener descriptor over the connected socket
    // together with `state_json` (the containerProcessState document).
    ErrorOr<void> load(std::string const& state_json = {});

private:
    SeccompFilter(scmp_filter_ctx context, bool notify)
        : m_context(context)
        , m_notify(notify)
    {
    }
    scmp_filter_ctx m_context { nullptr };
    bool m_notify { false };
    Fd m_listener;
};

} // namespace kasou::container
