#include "kvm/vcpu.h"

#include <atomic>
#include <cerrno>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <fmt/format.h>

#include "base/sys_file.h"
#include "base/try.h"
#include "kvm/variable_size_abi.h"

namespace kasou::kvm {

namespace {

template<class T>
ErrorOr<T> get(int fd, unsigned long request, char const* name)
{
    T value {};
    TRY(sys::ioctl(fd, request, &value, name));
    return value;
}

template<class T>
ErrorOr<void> set(int fd, unsigned long request, T const& value, char const* name)
{
    TRY(sys::ioctl(fd, request, &value, name));
    return {};
}

} // namespace

ErrorOr<Vcpu> Vcpu::create(Fd fd, u32 index, u64 mmap_size)
{
    Mapping run = TRY(Mapping::of_fd(fd.get(), mmap_size, PROT_READ | PROT_WRITE));
    return Vcpu(std::move(fd), index, std::move(run));
}

ErrorOr<bool> Vcpu::run()
{
    // EINTR here is the stop signal, not something to retry. EAGAIN comes from the first KVM_RUN of
    // an application processor on some hosts; the caller runs again.
    auto ran = sys::ioctl_interruptible(m_fd.get(), KVM_RUN, "KVM_RUN");
    if (!ran) {
        if (ran.error().code() == EINTR || ran.error().code() == EAGAIN) {
            std::atomic_ref<u8>(run_state()->immediate_exit).store(0, std::memory_order_relaxed);
            return false;
        }
        return tl::unexpected(ran.error());
    }
    return true;
}

void Vcpu::request_immediate_exit() const
{
    std::atomic_ref<u8>(run_state()->immediate_exit).store(1, std::memory_order_release);
}

ErrorOr<kvm_regs> Vcpu::regs() const { return get<kvm_regs>(m_fd.get(), KVM_GET_REGS, "KVM_GET_REGS"); }
ErrorOr<void> Vcpu::set_regs(kvm_regs const& v) { return set(m_fd.get(), KVM_SET_REGS, v, "KVM_SET_REGS"); }
ErrorOr<kvm_sregs> Vcpu::sregs() const { return get<kvm_sregs>(m_fd.get(), KVM_GET_SREGS, "KVM_GET_SREGS"); }
ErrorOr<void> Vcpu::set_sregs(kvm_sregs const& v) { return set(m_fd.get(), KVM_SET_SREGS, v, "KVM_SET_SREGS"); }
ErrorOr<kvm_fpu> Vcpu::fpu() const { return get<kvm_fpu>(m_fd.get(), KVM_GET_FPU, "KVM_GET_FPU"); }
ErrorOr<void> Vcpu::set_fpu(kvm_fpu const& v) { return set(m_fd.get(), KVM_SET_FPU, v, "KVM_SET_FPU"); }
ErrorOr<Vcpu::XsaveArea> Vcpu::xsave() const { return get<XsaveArea>(m_fd.get(), abi::GET_XSAVE, "KVM_GET_XSAVE"); }
ErrorOr<void> Vcpu::set_xsave(XsaveArea const& v) { return set(m_fd.get(), abi::SET_XSAVE, v, "KVM_SET_XSAVE"); }
ErrorOr<kvm_xcrs> Vcpu::xcrs() const { return get<kvm_xcrs>(m_fd.get(), KVM_GET_XCRS, "KVM_GET_XCRS"); }
ErrorOr<void> Vcpu::set_xcrs(kvm_xcrs const& v) { return set(m_fd.get(), KVM_SET_XCRS, v, "KVM_SET_XCRS"); }
ErrorOr<kvm_lapic_state> Vcpu::lapic() const { return get<kvm_lapic_state>(m_fd.get(), KVM_GET_LAPIC, "KVM_GET_LAPIC"); }
ErrorOr<void> Vcpu::set_lapic(kvm_lapic_state const& v) { return set(m_fd.get(), KVM_SET_LAPIC, v, "KVM_SET_LAPIC"); }
ErrorOr<kvm_mp_state> Vcpu::mp_state() const { return get<kvm_mp_state>(m_fd.get(), KVM_GET_MP_STATE, "KVM_GET_MP_STATE"); }
ErrorOr<void> Vcpu::set_mp_state(kvm_mp_state const& v) { return set(m_fd.get(), KVM_SET_MP_STATE, v, "KVM_SET_MP_STATE"); }
ErrorOr<kvm_vcpu_events> Vcpu::events() const { return get<kvm_vcpu_events>(m_fd.get(), KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS"); }
ErrorOr<void> Vcpu::set_events(kvm_vcpu_events const& v) { return set(m_fd.get(), KVM_SET_VCPU_EVENTS, v, "KVM_SET_VCPU_EVENTS"); }

ErrorOr<kvm_debugregs> Vcpu::debug_registers() const { return get<kvm_debugregs>(m_fd.get(), KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS"); }
ErrorOr<void> Vcpu::set_debug_registers(kvm_debugregs const& v) { return set(m_fd.get(), KVM_SET_DEBUGREGS, v, "KVM_SET_DEBUGREGS"); }

ErrorOr<std::vector<kvm_cpuid_entry2>> Vcpu::cpuid() const { return abi::read_cpuid(m_fd.get(), abi::GET_CPUID2, "KVM_GET_CPUID2"); }

ErrorOr<void> Vcpu::interrupt(u32 vector)
{
    kvm_interrupt value {};
    value.irq = vector;
    return set(m_fd.get(), KVM_INTERRUPT, value, "KVM_INTERRUPT");
}

ErrorOr<void> Vcpu::set_cpuid(std::span<kvm_cpuid_entry2 const> entries)
{
    abi::VariableSizeBuffer<abi::CountAndPadding, kvm_cpuid_entry2> buffer(entries.size());
    buffer.set_header({ static_cast<u32>(entries.size()), 0 });
    std::copy(entries.begin(), entries.end(), buffer.entries(entries.size()).begin());
    TRY(sys::ioctl(m_fd.get(), abi::SET_CPUID2, buffer.data(), "KVM_SET_CPUID2"));
    return {};
}

ErrorOr<std::vector<std::pair<u32, u64>>> Vcpu::readable_msrs(std::span<u32 const> indices) const
{
    // KVM_GET_MSRS stops at the first MSR it cannot read and says how many it read: go on after it.
    std::vector<std::pair<u32, u64>> values;
    while (!indices.empty()) {
        abi::VariableSizeBuffer<abi::CountAndPadding, kvm_msr_entry> buffer(indices.size());
        buffer.set_header({ static_cast<u32>(indices.size()), 0 });
        auto entries = buffer.entries(indices.size());
        for (size_t i = 0; i < indices.size(); ++i)
            entries[i] = kvm_msr_entry { .index = indices[i], .reserved = 0, .data = 0 };
        auto read = static_cast<size_t>(TRY(sys::ioctl(m_fd.get(), abi::GET_MSRS, buffer.data(), "KVM_GET_MSRS")));
        for (size_t i = 0; i < read && i < entries.size(); ++i)
            values.emplace_back(entries[i].index, entries[i].data);
        indices = indices.subspan(std::min(read + 1, indices.size()));
    }
    return values;
}

ErrorOr<void> Vcpu::set_msrs(std::span<std::pair<u32, u64> const> values)
{
    abi::VariableSizeBuffer<abi::CountAndPadding, kvm_msr_entry> buffer(values.size());
    buffer.set_header({ static_cast<u32>(values.size()), 0 });
    auto entries = buffer.entries(values.size());
    for (size_t i = 0; i < values.size(); ++i)
        entries[i] = kvm_msr_entry { .index = values[i].first, .reserved = 0, .data = values[i].second };
    int written = TRY(sys::ioctl(m_fd.get(), abi::SET_MSRS, buffer.data(), "KVM_SET_MSRS"));
    if (static_cast<size_t>(written) != values.size())
        return make_error(fmt::format("KVM_SET_MSRS: MSR {:#x} was refused", values[static_cast<size_t>(written)].first));
    return {};
}

ErrorOr<u64> Vcpu::translate(u64 linear) const
{
    kvm_translation translation {};
    translation.linear_address = linear;
    TRY(sys::ioctl(m_fd.get(), KVM_TRANSLATE, &translation, "KVM_TRANSLATE"));
    if (!translation.valid)
        return make_error(ErrorKind::NotFound, fmt::format("linear address {:#x} is not mapped", linear));
    return translation.physical_address;
}

} // namespace kasou::kvm
