#pragma once

// The KVM ioctls whose argument is a header followed by a variable number of entries.
//
// <linux/kvm.h> declares those structs with __DECLARE_FLEX_ARRAY, which in C++ inserts an empty
// struct that takes one byte: under g++ the C++ view of struct kvm_cpuid2, kvm_msrs, kvm_msr_list
// and kvm_irq_routing has its entries at the wrong offset and a different sizeof, and the ioctl
// numbers that encode that sizeof (KVM_GET_SUPPORTED_CPUID, ...) differ from the kernel's. kasou
// therefore spells the headers and ioctl numbers out with the C layout, and keeps the entries in a
// buffer of its own.

#include <cerrno>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include <linux/kvm.h>

#include <fmt/format.h>

#include "base/error.h"
#include "base/sys_file.h"
#include "base/types.h"

namespace kasou::kvm::abi {

struct CountAndPadding {
    u32 count;
    u32 padding;
};
static_assert(sizeof(CountAndPadding) == 8);

// Documentation/virt/kvm/api.rst, 4.46 (KVM_GET_SUPPORTED_CPUID), 4.60 (KVM_SET_CPUID2),
// 4.3 (KVM_GET_MSR_INDEX_LIST), 4.18/4.19 (KVM_GET_MSRS/KVM_SET_MSRS), 4.52 (KVM_SET_GSI_ROUTING),
// 4.42/4.43 (KVM_GET_XSAVE/KVM_SET_XSAVE, a fixed 4 KiB region), 4.61 (KVM_GET_CPUID2).
constexpr unsigned long GET_SUPPORTED_CPUID = _IOWR(KVMIO, 0x05, CountAndPadding);
constexpr unsigned long SET_CPUID2 = _IOW(KVMIO, 0x90, CountAndPadding);
constexpr unsigned long GET_CPUID2 = _IOWR(KVMIO, 0x91, CountAndPadding);
constexpr unsigned long GET_MSR_INDEX_LIST = _IOWR(KVMIO, 0x02, u32);
constexpr unsigned long GET_MSRS = _IOWR(KVMIO, 0x88, CountAndPadding);
constexpr unsigned long SET_MSRS = _IOW(KVMIO, 0x89, CountAndPadding);
constexpr unsigned long SET_GSI_ROUTING = _IOW(KVMIO, 0x6a, CountAndPadding);
constexpr unsigned long GET_XSAVE = _IOR(KVMIO, 0xa4, u8[4096]);
constexpr unsigned long SET_XSAVE = _IOW(KVMIO, 0xa5, u8[4096]);

// A Header immediately followed by `capacity` Entry values, as one contiguous buffer.
template<class Header, class Entry>
class VariableSizeBuffer {
public:
    explicit VariableSizeBuffer(size_t capacity)
        : m_capacity(capacity)
        , m_bytes(std::make_unique<u8[]>(sizeof(Header) + capacity * sizeof(Entry)))
    {
    }

    void* data() { return m_bytes.get(); }
    Header header() const
    {
        Header value;
        std::memcpy(&value, m_bytes.get(), sizeof(Header));
        return value;
    }
    void set_header(Header const& value) { std::memcpy(m_bytes.get(), &value, sizeof(Header)); }
    // The entries, of which the first `count` are meaningful.
    std::span<Entry> entries(size_t count)
    {
        return { reinterpret_cast<Entry*>(m_bytes.get() + sizeof(Header)), std::min(count, m_capacity) };
    }

private:
    size_t m_capacity;
    std::unique_ptr<u8[]> m_bytes;
};

// A CPUID table through `request` (KVM_GET_SUPPORTED_CPUID on /dev/kvm, KVM_GET_CPUID2 on a vCPU),
// growing the buffer while the kernel answers E2BIG.
inline ErrorOr<std::vector<kvm_cpuid_entry2>> read_cpuid(int fd, unsigned long request, char const* name)
{
    for (u32 capacity = 64; capacity <= 4096; capacity *= 2) {
        VariableSizeBuffer<CountAndPadding, kvm_cpuid_entry2> buffer(capacity);
        buffer.set_header({ capacity, 0 });
        auto rc = sys::ioctl(fd, request, buffer.data(), name);
        if (!rc) {
            if (rc.error().code() == E2BIG)
                continue;
            return tl::unexpected(rc.error());
        }
        auto entries = buffer.entries(buffer.header().count);
        return std::vector<kvm_cpuid_entry2>(entries.begin(), entries.end());
    }
    return make_error(fmt::format("{}: too many entries", name));
}

} // namespace kasou::kvm::abi
