#include "kvm/vm.h"

#include <algorithm>

#include "base/sys_file.h"
#include "base/try.h"
#include "kvm/variable_size_abi.h"
#include "kvm/vcpu.h"

namespace kasou::kvm {

ErrorOr<void> Vm::set_user_memory_region(u32 slot, u64 guest_physical, u64 size, void* host, bool log_dirty)
{
    kvm_userspace_memory_region region {};
    region.slot = slot;
    region.flags = log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0;
    region.guest_phys_addr = guest_physical;
    region.memory_size = size;
    region.userspace_addr = reinterpret_cast<u64>(host);
    TRY(sys::ioctl(fd(), KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION"));
    return {};
}

ErrorOr<void> Vm::set_tss_address(u64 address)
{
    TRY(sys::ioctl(fd(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(address), "KVM_SET_TSS_ADDR"));
    return {};
}

ErrorOr<void> Vm::set_identity_map_address(u64 address)
{
    u64 value = address;
    TRY(sys::ioctl(fd(), KVM_SET_IDENTITY_MAP_ADDR, &value, "KVM_SET_IDENTITY_MAP_ADDR"));
    return {};
}

ErrorOr<void> Vm::create_irqchip()
{
    TRY(sys::ioctl(fd(), KVM_CREATE_IRQCHIP, "KVM_CREATE_IRQCHIP"));
    return {};
}

ErrorOr<void> Vm::enable_split_irqchip(u32 ioapic_pins)
{
    kvm_enable_cap cap {};
    cap.cap = KVM_CAP_SPLIT_IRQCHIP;
    cap.args[0] = ioapic_pins;
    TRY(sys::ioctl(fd(), KVM_ENABLE_CAP, &cap, "KVM_ENABLE_CAP (KVM_CAP_SPLIT_IRQCHIP)"));
    return {};
}

ErrorOr<void> Vm::create_pit()
{
    kvm_pit_config config {};
    config.flags = KVM_PIT_SPEAKER_DUMMY;
    TRY(sys::ioctl(fd(), KVM_CREATE_PIT2, &config, "KVM_CREATE_PIT2"));
    return {};
}

ErrorOr<kvm_irqchip> Vm::irqchip(u32 chip_id)
{
    kvm_irqchip chip {};
    chip.chip_id = chip_id;
    TRY(sys::ioctl(fd(), KVM_GET_IRQCHIP, &chip, "KVM_GET_IRQCHIP"));
    return chip;
}

ErrorOr<void> Vm::set_irqchip(kvm_irqchip const& chip)
{
    kvm_irqchip copy = chip;
    TRY(sys::ioctl(fd(), KVM_SET_IRQCHIP, &copy, "KVM_SET_IRQCHIP"));
    return {};
}

ErrorOr<kvm_pit_state2> Vm::pit()
{
    kvm_pit_state2 state {};
    TRY(sys::ioctl(fd(), KVM_GET_PIT2, &state, "KVM_GET_PIT2"));
    return state;
}

ErrorOr<void> Vm::set_pit(kvm_pit_state2 const& state)
{
    kvm_pit_state2 copy = state;
    TRY(sys::ioctl(fd(), KVM_SET_PIT2, &copy, "KVM_SET_PIT2"));
    return {};
}

ErrorOr<kvm_clock_data> Vm::clock()
{
    kvm_clock_data data {};
    TRY(sys::ioctl(fd(), KVM_GET_CLOCK, &data, "KVM_GET_CLOCK"));
    return data;
}

ErrorOr<void> Vm::set_clock(kvm_clock_data const& data)
{
    kvm_clock_data copy {};
    copy.clock = data.clock; // flags other than the clock itself are refused on older kernels
    TRY(sys::ioctl(fd(), KVM_SET_CLOCK, &copy, "KVM_SET_CLOCK"));
    return {};
}

ErrorOr<void> Vm::irq_line(u32 irq, bool level)
{
    kvm_irq_level line {};
    line.irq = irq;
    line.level = level ? 1 : 0;
    TRY(sys::ioctl(fd(), KVM_IRQ_LINE, &line, "KVM_IRQ_LINE"));
    return {};
}

ErrorOr<void> Vm::register_irqfd(int event_fd, u32 gsi)
{
    kvm_irqfd irqfd {};
    irqfd.fd = static_cast<u32>(event_fd);
    irqfd.gsi = gsi;
    TRY(sys::ioctl(fd(), KVM_IRQFD, &irqfd, "KVM_IRQFD"));
    return {};
}

ErrorOr<void> Vm::unregister_irqfd(int event_fd, u32 gsi)
{
    kvm_irqfd irqfd {};
    irqfd.fd = static_cast<u32>(event_fd);
    irqfd.gsi = gsi;
    irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
    TRY(sys::ioctl(fd(), KVM_IRQFD, &irqfd, "KVM_IRQFD (deassign)"));
    return {};
}

namespace {

ErrorOr<void> assign_ioeventfd(int vm_fd, int event_fd, u64 address, u32 size, bool pio, bool deassign)
{
    kvm_ioeventfd ioeventfd {};
    ioeventfd.addr = address;
    ioeventfd.len = size;
    ioeventfd.fd = event_fd;
    ioeventfd.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0);
    TRY(sys::ioctl(vm_fd, KVM_IOEVENTFD, &ioeventfd, deassign ? "KVM_IOEVENTFD (deassign)" : "KVM_IOEVENTFD"));
    return {};
}

} // namespace

ErrorOr<void> Vm::register_ioeventfd(int event_fd, u64 address, u32 size, bool pio)
{
    return assign_ioeventfd(fd(), event_fd, address, size, pio, false);
}

ErrorOr<void> Vm::unregister_ioeventfd(int event_fd, u64 address, u32 size, bool pio)
{
    return assign_ioeventfd(fd(), event_fd, address, size, pio, true);
}

ErrorOr<void> Vm::set_gsi_routing(std::span<kvm_irq_routing_entry const> entries)
{
    abi::VariableSizeBuffer<abi::CountAndPadding, kvm_irq_routing_entry> buffer(entries.size());
    buffer.set_header({ static_cast<u32>(entries.size()), 0 });
    std::copy(entries.begin(), entries.end(), buffer.entries(entries.size()).begin());
    TRY(sys::ioctl(fd(), abi::SET_GSI_ROUTING, buffer.data(), "KVM_SET_GSI_ROUTING"));
    return {};
}

ErrorOr<void> Vm::signal_msi(u64 address, u32 data)
{
    kvm_msi msi {};
    msi.address_lo = static_cast<u32>(address);
    msi.address_hi = static_cast<u32>(address >> 32);
    msi.data = data;
    TRY(sys::ioctl(fd(), KVM_SIGNAL_MSI, &msi, "KVM_SIGNAL_MSI"));
    return {};
}

ErrorOr<std::vector<u64>> Vm::dirty_log(u32 slot, u64 size)
{
    u64 pages = (size + 4095) / 4096;
    std::vector<u64> bitmap((pages + 63) / 64);
    kvm_dirty_log log {};
    log.slot = slot;
    log.dirty_bitmap = bitmap.data();
    TRY(sys::ioctl(fd(), KVM_GET_DIRTY_LOG, &log, "KVM_GET_DIRTY_LOG"));
    return bitmap;
}

ErrorOr<Vcpu> Vm::create_vcpu(u32 index) const
{
    int vcpu_fd = TRY(sys::ioctl(fd(), KVM_CREATE_VCPU, static_cast<unsigned long>(index), "KVM_CREATE_VCPU"));
    return Vcpu::create(Fd(vcpu_fd), index, m_vcpu_mmap_size);
}

} // namespace kasou::kvm
