// Random bytes as guest code for the software CPU, in real, protected or long mode, over 1 MiB of
// guest RAM: the CPU must never crash, hang or touch host memory outside that RAM, whatever the
// guest does to its page tables, descriptor tables or its own code. Exits are answered with
// bytes from the input.

#include <cstring>
#include <vector>

#include "emu/cpu/cpu.h"
#include "emu_fuzz_input.h"

namespace {

using namespace kasou;
using namespace kasou::emu::cpu;

constexpr u64 RAM = 1 << 20;
constexpr u64 CODE = 0x1000;
constexpr u64 PML4 = 0x10000;

struct Platform final : CpuPlatform {
    u64 time { 0 };
    u64 tsc() override { return time += 100; }
    bool read_msr(u32, u64&) override { return false; }
    bool write_msr(u32, u64) override { return false; }
};

Segment flat(u16 selector, u8 type, bool code64, bool big)
{
    Segment segment {};
    segment.selector = selector;
    segment.type = type;
    segment.s = 1;
    segment.present = 1;
    segment.g = 1;
    segment.limit = 0xFFFF'FFFF;
    segment.l = code64;
    segment.db = big && !code64;
    return segment;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    fuzz::FuzzInput input(data, size);
    static std::vector<u8> ram(RAM);
    std::fill(ram.begin(), ram.end(), u8 { 0 });
    u8 const mode = input.byte() % 3;
    // Code from the input, then a few words of page tables (identity map of the first 2 MiB).
    for (u64 i = 0; i < 0x2000 && !input.empty(); ++i)
        ram[CODE + i] = input.byte();
    u64 const entries[] = { (PML4 + 0x1000) | 7, (PML4 + 0x2000) | 7, 0x87 };
    for (int level = 0; level < 3; ++level)
        std::memcpy(ram.data() + PML4 + level * 0x1000, &entries[level], 8);

    PhysicalMemory memory;
    memory.add(0, RAM, ram.data());
    Platform platform;
    Cpu cpu(memory, platform);
    auto& s = cpu.state();
    s.idt = { 0x20000, 0xFFF };
    s.gdt = { 0x21000, 0xFF };
    s.rip = CODE;
    s.gpr[4] = 0x8000;
    if (mode == 0) {
        for (auto& segment : s.segments) {
            segment = {};
            segment.limit = 0xFFFF;
            segment.present = 1;
            segment.s = 1;
            segment.type = 3;
        }
        s.segments[1].type = 0xB;
        s.idt = { 0, 0x3FF };
    } else {
        s.segments[1] = flat(0x08, 0xB, mode == 2, true);
        for (u8 index : { 0, 2, 3, 4, 5 })
            s.segments[index] = flat(0x10, 0x3, false, true);
        s.cr0 = cr0::PE | cr0::ET;
        if (mode == 2) {
            s.cr0 |= cr0::PG;
            s.cr3 = PML4;
            s.cr4 = cr4::PAE;
            s.efer = efer::LME | efer::LMA | efer::NXE | efer::SCE;
        }
    }
    cpu.state_changed();
    for (int exits = 0; exits < 64; ++exits) {
        CpuExit exit = cpu.run(2000);
        if (exit.kind == CpuExit::Kind::Shutdown || exit.kind == CpuExit::Kind::Halt || exit.kind == CpuExit::Kind::BudgetSpent)
            break;
        if (!exit.write)
            cpu.complete_read(input.word());
    }
    return 0;
}
