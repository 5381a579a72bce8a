#pragma once

#include "engine/vm.h"
#include "virtio/notify_router.h"

namespace kasou::vmm {

// Routes virtio notification addresses to their eventfds with the engine's ioeventfds (MMIO, any write
// length), so a guest notification signals the device's I/O thread without leaving the kernel.
// Stateless apart from the VM it talks to; one serves every transport of a machine.
class IoeventfdRouter final : public virtio::NotifyRouter {
public:
    explicit IoeventfdRouter(engine::Vm& vm)
        : m_vm(vm)
    {
    }

    ErrorOr<void> route(u64 address, int event_fd) override { return m_vm.register_ioeventfd(event_fd, address, 0, false); }
    ErrorOr<void> unroute(u64 address, int event_fd) override { return m_vm.unregister_ioeventfd(event_fd, address, 0, false); }

private:
    engine::Vm& m_vm;
};

} // namespace kasou::vmm
