#pragma once

#include <string>

#include "engine/vcpu.h"
#include "memory/guest_memory.h"

namespace kasou::vmm {

// "RIP 0x100234 (CS base 0, protected mode, paging off); bytes at RIP: 0f 0b 90 ..." for a stopped
// vCPU, so a failure message says where the guest was and what it was executing. Parts that cannot
// be read are said to be unreadable rather than omitted; a vCPU found at the reset vector is said to
// have lost its state (what KVM does on AMD SVM after a shutdown). Reads the vCPU through the
// engine interface only, so it serves every engine.
std::string describe_vcpu_position(engine::Vcpu const& vcpu, memory::GuestMemory const& memory);

} // namespace kasou::vmm
