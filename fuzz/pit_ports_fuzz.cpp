// A hostile guest against the 8254 PIT: any sequence of port writes and reads (0x40-0x43, 0x61)
// with the clock moving by arbitrary steps, and host timer callbacks. Checks that channel 0's next
// deadline always lies after the time of the last update, so a host timer armed for it can never
// fire in a loop, and that IRQ 0 is only ever pulsed (raised, then lowered).

#include <cstdlib>

#include "emu/pit_8254.h"
#include "emu_fuzz_input.h"

using namespace kasou;

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    fuzz::FuzzInput input(data, size);
    u64 now = 1'000'000'000;
    bool irq = false;
    std::optional<u64> deadline;
    emu::Pit8254 pit([&] { return now; },
        [&](bool level) {
            if (level == irq)
                std::abort();
            irq = level;
        },
        [&](std::optional<u64> next) {
            if (next && emu::Pit8254::ticks_at(*next) <= emu::Pit8254::ticks_at(now))
                std::abort(); // a deadline in the past would spin the host timer
            deadline = next;
        });
    constexpr u16 PORTS[] = { 0x40, 0x41, 0x42, 0x43, 0x61, 0x44, 0x60, 0x62 };
    while (!input.empty()) {
        u8 op = input.byte();
        switch (op & 3) {
        case 0:
            pit.write_port(PORTS[(op >> 2) & 7], input.byte());
            break;
        case 1:
            pit.read_port(PORTS[(op >> 2) & 7]);
            break;
        case 2:
            now += static_cast<u64>(input.word()) << ((op >> 2) & 15);
            break;
        default:
            if (deadline && (op & 4))
                now = std::max(now, *deadline);
            pit.update();
            if (irq)
                std::abort();
            break;
        }
    }
    return 0;
}
