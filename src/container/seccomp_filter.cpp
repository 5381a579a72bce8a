#include "container/seccomp_filter.h"

#include <cerrno>
#include <seccomp.h>
#include <utility>

#include <fmt/format.h>

#include "base/sys_socket.h"
#include "base/try.h"
#include "base/unix_socket.h"

namespace kasou::container {

namespace {

u32 libseccomp_action(SeccompAction action, std::optional<u32> errno_ret)
{
    switch (action) {
    case SeccompAction::Kill:
    case SeccompAction::KillThread:
        return SCMP_ACT_KILL_THREAD;
    case SeccompAction::KillProcess:
        return SCMP_ACT_KILL_PROCESS;
    case SeccompAction::Trap:
        return SCMP_ACT_TRAP;
    case SeccompAction::Errno:
        return SCMP_ACT_ERRNO(errno_ret.value_or(EPERM));
    case SeccompAction::Trace:
        return SCMP_ACT_TRACE(errno_ret.value_or(EPERM));
    case SeccompAction::Allow:
        return SCMP_ACT_ALLOW;
    case SeccompAction::Log:
        return SCMP_ACT_LOG;
    case SeccompAction::Notify:
        return SCMP_ACT_NOTIFY;
    }
    return SCMP_ACT_KILL_PROCESS;
}

std::optional<scmp_compare> compare_op(std::string const& name)
{
    std::pair<char const*, scmp_compare> const ops[] = {
        { "SCMP_CMP_NE", SCMP_CMP_NE },
        { "SCMP_CMP_LT", SCMP_CMP_LT },
        { "SCMP_CMP_LE", SCMP_CMP_LE },
        { "SCMP_CMP_EQ", SCMP_CMP_EQ },
        { "SCMP_CMP_GE", SCMP_CMP_GE },
        { "SCMP_CMP_GT", SCMP_CMP_GT },
        { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
    };
    for (auto const& [known, op] : ops) {
        if (name == known)
            return op;
    }
    return std::nullopt;
}

// libseccomp returns -errno; no global errno is read.
ErrorOr<void> check(int rc, std::string_view what)
{
    if (rc < 0)
        return make_errno_error(-rc, what);
    return {};
}

} // namespace

ErrorOr<SeccompFilter> SeccompFilter::build(Seccomp const& profile)
{
    bool notify = profile.default_action == SeccompAction::Notify;
    scmp_filter_ctx context = seccomp_init(libseccomp_action(profile.default_action, profile.default_errno_ret));
    if (!context)
        return make_error(ErrorKind::InvalidInput, "linux.seccomp.defaultAction: libseccomp refused it");
    SeccompFilter filter(context, notify);
    // noNewPrivileges is the configuration's choice, not libseccomp's.
    TRY(check(seccomp_attr_set(context, SCMP_FLTATR_CTL_NNP, 0), "seccomp_attr_set(NNP)"));
    for (auto const& flag : profile.flags) {
        auto attribute = flag == "SECCOMP_FILTER_FLAG_LOG" ? SCMP_FLTATR_CTL_LOG
            : flag == "SECCOMP_FILTER_FLAG_SPEC_ALLOW"     ? SCMP_FLTATR_CTL_SSB
                                                           : SCMP_FLTATR_CTL_TSYNC;
        TRY(check(seccomp_attr_set(context, attribute, 1), fmt::format("linux.seccomp.flags {}", flag)));
    }
    for (auto const& name : profile.architectures) {
        std::string arch = name.starts_with("SCMP_ARCH_") ? name.substr(10) : name;
        for (auto& c : arch)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        u32 token = seccomp_arch_resolve_name(arch.c_str());
        if (token == 0)
            return make_error(fmt::format("linux.seccomp.architectures: unknown architecture {}", name));
        int rc = seccomp_arch_add(context, token);
        if (rc != -EEXIST)
            TRY(check(rc, fmt::format("linux.seccomp.architectures {}", name)));
    }
    u32 default_action = libseccomp_action(profile.default_action, profile.default_errno_ret);
    for (size_t i = 0; i < profile.syscalls.size(); ++i) {
        auto const& rule = profile.syscalls[i];
        filter.m_notify = filter.m_notify || rule.action == SeccompAction::Notify;
        u32 action = libseccomp_action(rule.action, rule.errno_ret);
        if (action == default_action)
            continue; // libseccomp refuses a rule that changes nothing
        std::vector<scmp_arg_cmp> args;
        for (auto const& arg : rule.args) {
            auto op = compare_op(arg.op);
            if (!op)
                return make_error(fmt::format("linux.seccomp.syscalls[{}].args: unknown operator {}", i, arg.op));
            args.push_back(scmp_arg_cmp { arg.index, *op, arg.value, arg.value_two });
        }
        for (auto const& name : rule.names) {
            int number = seccomp_syscall_resolve_name(name.c_str());
            if (number == __NR_SCMP_ERROR)
                continue;
            TRY(check(seccomp_rule_add_array(context, action, number, static_cast<unsigned>(args.size()), args.data()),
                fmt::format("linux.seccomp.syscalls[{}] {}", i, name)));
        }
    }
    return filter;
}

SeccompFilter::SeccompFilter(SeccompFilter&& other) noexcept
    : m_context(std::exchange(other.m_context, nullptr))
    , m_notify(other.m_notify)
    , m_listener(std::move(other.m_listener))
{
}

SeccompFilter::~SeccompFilter()
{
    if (m_context)
        seccomp_release(m_context);
}

ErrorOr<void> SeccompFilter::connect_listener(std::string const& path)
{
    m_listener = TRY(connect_unix(path).map_error([](Error const& error) { return error.with_prefix("linux.seccomp.listenerPath"); }));
    return {};
}

ErrorOr<void> SeccompFilter::load(std::string const& state_json)
{
    TRY(check(seccomp_load(m_context), "seccomp_load"));
    if (!m_notify)
        return {};
    int fd = seccomp_notify_fd(m_context);
    if (fd < 0)
        return make_errno_error(-fd, "seccomp_notify_fd");
    return sys::send_with_fds(m_listener.get(), state_json.data(), state_json.size(), std::span<int const>(&fd, 1));
}

} // namespace kasou::container
