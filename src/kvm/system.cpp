#include "kvm/system.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include "base/sys_file.h"
#include "base/try.h"
#include "kvm/variable_size_abi.h"
#include "kvm/vm.h"

namespace kasou::kvm {

namespace {

constexpr int KVM_API_VERSION_EXPECTED = 12; // Documentation/virt/kvm/api.rst, 4.1

ErrorOr<std::vector<u32>> read_msr_index_list(int fd)
{
    u32 count = 0;
    auto probe = sys::ioctl(fd, abi::GET_MSR_INDEX_LIST, &count, "KVM_GET_MSR_INDEX_LIST");
    if (probe || probe.error().code() != E2BIG)
        return std::vector<u32> {};
    abi::VariableSizeBuffer<u32, u32> buffer(count);
    buffer.set_header(count);
    TRY(sys::ioctl(fd, abi::GET_MSR_INDEX_LIST, buffer.data(), "KVM_GET_MSR_INDEX_LIST"));
    auto indices = buffer.entries(buffer.header());
    return std::vector<u32>(indices.begin(), indices.end());
}

} // namespace

ErrorOr<System> System::open(char const* path)
{
    auto fd = sys::open(path, O_RDWR);
    if (!fd) {
        int code = fd.error().code();
        if (code == ENOENT)
            return make_error(ErrorKind::Unsupported, fmt::format("{} does not exist: this host offers no KVM (load kvm_intel or kvm_amd, or enable virtualization in the firmware)", path));
        if (code == EACCES || code == EPERM)
            return make_error(ErrorKind::PermissionDenied, fmt::format("no permission to open {}: run as root or join the kvm group", path));
        return tl::unexpected(fd.error());
    }
    System system(std::move(*fd));
    int version = TRY(sys::ioctl(system.fd(), KVM_GET_API_VERSION, "KVM_GET_API_VERSION"));
    if (version != KVM_API_VERSION_EXPECTED)
        return make_error(ErrorKind::Unsupported, fmt::format("{} speaks KVM API version {}, kasou needs {}", path, version, KVM_API_VERSION_EXPECTED));
    int mmap_size = TRY(sys::ioctl(system.fd(), KVM_GET_VCPU_MMAP_SIZE, "KVM_GET_VCPU_MMAP_SIZE"));
    system.m_vcpu_mmap_size = static_cast<u64>(mmap_size);
    system.m_supported_cpuid = TRY(abi::read_cpuid(system.fd(), abi::GET_SUPPORTED_CPUID, "KVM_GET_SUPPORTED_CPUID"));
    system.m_msr_index_list = TRY(read_msr_index_list(system.fd()));
    return system;
}

int System::check_extension(int capability) const
{
    auto rc = sys::ioctl(m_fd.get(), KVM_CHECK_EXTENSION, static_cast<unsigned long>(capability), "KVM_CHECK_EXTENSION");
    return rc ? *rc : 0;
}

int System::max_vcpus() const
{
    int max = check_extension(KVM_CAP_MAX_VCPUS);
    if (max > 0)
        return max;
    int recommended = check_extension(KVM_CAP_NR_VCPUS);
    return recommended > 0 ? recommended : 4;
}

ErrorOr<Vm> System::create_vm() const
{
    int vm_fd = TRY(sys::ioctl(m_fd.get(), KVM_CREATE_VM, 0ul, "KVM_CREATE_VM"));
    return Vm(Fd(vm_fd), m_vcpu_mmap_size);
}

bool System::host_is_pvm()
{
    struct stat st { };
    return ::stat("/sys/module/kvm_pvm", &st) == 0;
}

} // namespace kasou::kvm
