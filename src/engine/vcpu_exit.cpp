#include "engine/vcpu_exit.h"

#include "base/overloaded.h"

namespace kasou::engine {

std::string_view exit_name(VcpuExit const& exit)
{
    return std::visit(Overloaded {
                          [](exit::PortIo const&) { return "port I/O"; },
                          [](exit::Mmio const&) { return "MMIO"; },
                          [](exit::Halt const&) { return "halt"; },
                          [](exit::Shutdown const&) { return "shutdown"; },
                          [](exit::Interrupted const&) { return "interrupted"; },
                          [](exit::SystemEvent const&) { return "system event"; },
                          [](exit::IoapicEoi const&) { return "IOAPIC EOI"; },
                          [](exit::InterruptWindowOpen const&) { return "interrupt window open"; },
                          [](exit::Failure const&) { return "failure"; },
                      },
        exit);
}

} // namespace kasou::engine
