#include "container/namespaces.h"

#include <fcntl.h>
#include <algorithm>
#include <sched.h>
#include <vector>

#include <fmt/format.h>

#include "base/sys_file.h"
#include "base/sys_namespace.h"
#include "base/try.h"

namespace kasou::container {

int namespace_flag(NamespaceType type)
{
    switch (type) {
    case NamespaceType::Pid:
        return CLONE_NEWPID;
    case NamespaceType::Network:
        return CLONE_NEWNET;
    case NamespaceType::Mount:
        return CLONE_NEWNS;
    case NamespaceType::Ipc:
        return CLONE_NEWIPC;
    case NamespaceType::Uts:
        return CLONE_NEWUTS;
    case NamespaceType::User:
        return CLONE_NEWUSER;
    case NamespaceType::Cgroup:
        return CLONE_NEWCGROUP;
    case NamespaceType::Time:
        return CLONE_NEWTIME;
    }
    return 0;
}

u64 new_namespace_flags(Linux const& linux)
{
    u64 flags = 0;
    for (auto const& ns : linux.namespaces) {
        if (ns.path.empty())
            flags |= static_cast<u64>(namespace_flag(ns.type));
    }
    return flags;
}

ErrorOr<void> join_namespaces(Linux const& linux, bool for_children)
{
    auto join = [&](Namespace const& ns) -> ErrorOr<void> {
        auto prefix = [&](Error const& error) {
            return error.with_prefix(fmt::format("linux.namespaces {} {}", namespace_name(ns.type), ns.path));
        };
        auto fd = TRY(sys::open(ns.path, O_RDONLY | O_CLOEXEC).map_error(prefix));
        return sys::setns(fd.get(), namespace_flag(ns.type)).map_error(prefix);
    };
    auto joins_in_parent = [](NamespaceType type) { return type == NamespaceType::Pid || type == NamespaceType::Time; };
    std::vector<Namespace const*> order;
    for (auto const& ns : linux.namespaces) {
        if (ns.path.empty() || joins_in_parent(ns.type) != for_children)
            continue;
        if (ns.type == NamespaceType::User)
            order.insert(order.begin(), &ns);
        else
            order.push_back(&ns);
    }
    std::stable_partition(order.begin(), order.end(), [](Namespace const* ns) { return ns->type != NamespaceType::Mount; });
    for (auto const* ns : order)
        TRY(join(*ns));
    return {};
}

} // namespace kasou::container
