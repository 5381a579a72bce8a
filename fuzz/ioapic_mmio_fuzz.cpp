// A hostile guest against the I/O APIC: MMIO reads and writes of any size at any offset of its
// page (IOREGSEL, IOWIN, the EOI register and the holes between), pin changes and EOIs by vector.
// Checks that every delivery names a valid pin and an MSI in the local APICs' window, and that a
// level pin is delivered again only after an EOI, a switch to edge or a remask.

#include <cstdlib>
#include <span>

#include "emu/ioapic.h"
#include "emu_fuzz_input.h"

using namespace kasou;

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    fuzz::FuzzInput input(data, size);
    emu::Ioapic ioapic(
        [](u32 pin, emu::MsiMessage message) {
            if (pin >= emu::Ioapic::PIN_COUNT || (message.address & 0xfff0'0000) != 0xfee0'0000)
                std::abort();
        },
        [](u32 pin, std::optional<emu::MsiMessage> message) {
            if (pin >= emu::Ioapic::PIN_COUNT || (message && (message->address & 0xfff0'0000) != 0xfee0'0000))
                std::abort();
        });
    while (!input.empty()) {
        u8 op = input.byte();
        u64 offset = (static_cast<u64>(input.byte()) << 4 | (op >> 4)) % emu::Ioapic::SIZE;
        size_t length = 1u << ((op >> 2) & 3);
        u8 buffer[8] = {};
        switch (op & 3) {
        case 0: {
            u32 value = input.word();
            for (size_t i = 0; i < length; ++i)
                buffer[i] = static_cast<u8>(value >> (8 * (i % 4)));
            ioapic.write(offset, std::span<u8 const>(buffer, length));
            break;
        }
        case 1:
            ioapic.read(offset, std::span<u8>(buffer, length));
            break;
        case 2:
            ioapic.set_irq(static_cast<u32>(offset % 32), op & 0x10);
            break;
        default:
            ioapic.eoi(static_cast<u8>(offset));
            break;
        }
    }
    return 0;
}
