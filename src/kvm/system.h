#pragma once

#include <vector>

#include <linux/kvm.h>

#include "base/error.h"
#include "base/fd.h"
#include "base/types.h"

namespace kasou::kvm {

class Vm;

// An open /dev/kvm: the API version is checked on creation, and the answers that do not change
// while the process runs (vCPU mmap size, supported CPUID, MSR index list) are read once.
class System {
public:
    static ErrorOr<System> open(char const* path = "/dev/kvm");

    // KVM_CHECK_EXTENSION; 0 when the capability is absent.
    int check_extension(int capability) const;
    ErrorOr<Vm> create_vm() const;

    int fd() const { return m_fd.get(); }
    u64 vcpu_mmap_size() const { return m_vcpu_mmap_size; }
    // KVM_CAP_MAX_VCPUS, falling back to KVM_CAP_NR_VCPUS as the API document says.
    int max_vcpus() const;
    std::vector<kvm_cpuid_entry2> const& supported_cpuid() const { return m_supported_cpuid; }
    std::vector<u32> const& msr_index_list() const { return m_msr_index_list; }

    // True when the host's KVM is PVM (software-only, shadow paging): guest kernel code is emulated.
    static bool host_is_pvm();

private:
    explicit System(Fd fd)
        : m_fd(std::move(fd))
    {
    }

    Fd m_fd;
    u64 m_vcpu_mmap_size { 0 };
    std::vector<kvm_cpuid_entry2> m_supported_cpuid;
    std::vector<u32> m_msr_index_list;
};

} // namespace kasou::kvm
