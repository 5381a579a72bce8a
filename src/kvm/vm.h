#pragma once

#include <span>
#include <vector>

#include <linux/kvm.h>

#include "base/error.h"
#include "base/fd.h"
#include "base/types.h"

namespace kasou::kvm {

class Vcpu;

// One KVM virtual machine (a KVM_CREATE_VM file descriptor): memory slots, the in-kernel interrupt
// controllers and timer, interrupt and notification plumbing (irqfd, ioeventfd, GSI routing), and
// the factory for its vCPUs. Calls that change the VM's layout (memory slots, irqchip) are made by
// one thread while no vCPU runs; irq_line and signal_msi are safe from any thread.
class Vm {
public:
    Vm(Vm&&) = default;
    Vm& operator=(Vm&&) = default;

    int fd() const { return m_fd.get(); }

    ErrorOr<void> set_user_memory_region(u32 slot, u64 guest_physical, u64 size, void* host, bool log_dirty = false);
    ErrorOr<void> set_tss_address(u64 address);
    ErrorOr<void> set_identity_map_address(u64 address);
    // The in-kernel PIC pair, IOAPIC and per-vCPU LAPICs (must precede create_vcpu).
    ErrorOr<void> create_irqchip();
    // KVM_CAP_SPLIT_IRQCHIP: only the LAPICs in the kernel, `ioapic_pins` GSIs reserved for a
    // userspace IOAPIC (must precede create_vcpu; instead of create_irqchip).
    ErrorOr<void> enable_split_irqchip(u32 ioapic_pins);
    // The in-kernel i8254 PIT on IRQ 0.
    ErrorOr<void> create_pit();
    // KVM_GET_IRQCHIP / KVM_SET_IRQCHIP of one chip (KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC).
    ErrorOr<kvm_irqchip> irqchip(u32 chip_id);
    ErrorOr<void> set_irqchip(kvm_irqchip const& chip);
    ErrorOr<kvm_pit_state2> pit();
    ErrorOr<void> set_pit(kvm_pit_state2 const& state);
    ErrorOr<kvm_clock_data> clock();
    ErrorOr<void> set_clock(kvm_clock_data const& data);
    // Raises (level = true) or lowers an interrupt line of the in-kernel irqchip.
    ErrorOr<void> irq_line(u32 irq, bool level);
    ErrorOr<void> register_irqfd(int event_fd, u32 gsi);
    ErrorOr<void> unregister_irqfd(int event_fd, u32 gsi);
    // A guest write of `size` bytes to `address` (port I/O when pio) signals event_fd without a
    // userspace exit.
    ErrorOr<void> register_ioeventfd(int event_fd, u64 address, u32 size, bool pio);
    // Removes a registration made with the same arguments.
    ErrorOr<void> unregister_ioeventfd(int event_fd, u64 address, u32 size, bool pio);
    ErrorOr<void> set_gsi_routing(std::span<kvm_irq_routing_entry const> entries);
    ErrorOr<void> signal_msi(u64 address, u32 data);
    // Returns the dirty-page bitmap of a slot created with log_dirty, one bit per 4 KiB page.
    ErrorOr<std::vector<u64>> dirty_log(u32 slot, u64 size);

    ErrorOr<Vcpu> create_vcpu(u32 index) const;

private:
    friend class System;
    Vm(Fd fd, u64 vcpu_mmap_size)
        : m_fd(std::move(fd))
        , m_vcpu_mmap_size(vcpu_mmap_size)
    {
    }

    Fd m_fd;
    u64 m_vcpu_mmap_size { 0 };
};

} // namespace kasou::kvm
