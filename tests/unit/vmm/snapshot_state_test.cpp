// The snapshot state file: everything written reads back field for field, and every way a file
// can be damaged, truncated, from another version or inconsistent is one error naming it.

#include <cstring>
#include <gtest/gtest.h>

#include "storage/pool/crc32c.h"
#include "vmm/snapshot_state.h"

using namespace kasou;
using namespace kasou::vmm;

namespace {

SnapshotState sample_state(bool split = true)
{
    SnapshotState state;
    state.config.kernel_path = "/guests/counter.elf";
    state.config.cpus = 2;
    state.config.memory = 64 << 20;
    state.config.entropy = false;
    state.memory_size = 64 << 20;
    for (u32 index = 0; index < 2; ++index) {
        arch::x86_64::VcpuState vcpu;
        vcpu.cpuid = { { 1, 0, false, 0x806f8, 0x800 * index, 0xfffa3203, 0x178bfbff }, { 0xb, 1, true, 1, 2, 3, index } };
        vcpu.registers.rip = 0x100000 + index;
        vcpu.registers.r15 = 0xdeadbeef;
        vcpu.system.cs = { 0, 0xffffffff, 0x8, 0xb, 1, 0, 0, 1, 1, 0, 0, false };
        vcpu.system.cr3 = 0x1000;
        vcpu.system.pending_interrupts[1] = 1u << 3;
        vcpu.fpu.xmm[3][7] = 0x42;
        vcpu.fpu.mxcsr = 0x1f80;
        vcpu.xsave[513] = 0x12345678;
        vcpu.xcrs = { { 0, 7 } };
        vcpu.msrs = { { 0x10, 123456789 }, { 0xc0000080, 0xd01 } };
        vcpu.debug.dr7 = 0x400;
        vcpu.lapic[0x20] = static_cast<u8>(index);
        vcpu.events.nmi.masked = true;
        vcpu.events.interrupt.shadow = 1;
        vcpu.mp_state = index ? arch::x86_64::MpState::Halted : arch::x86_64::MpState::Runnable;
        state.vcpus.push_back(vcpu);
    }
    if (split) {
        SplitIrqchip::State chips;
        chips.pic.master.imr = 0xfb;
        chips.pic.slave.init_step = 2;
        chips.ioapic.table.fill(1ull << 16);
        chips.ioapic.table[2] = 0x30;
        chips.pit.now = 123456789;
        chips.pit.channels[0].latched_count = 0x1234;
        chips.pit.channels[2].latched_status = 0x36;
        state.irqchip = chips;
    } else {
        engine::KernelIrqchipState chips;
        chips.pic_primary.irq_base = 0x20;
        chips.ioapic.redirection[4] = 0x31;
        chips.pit[0].load_age_ns = -5;
        state.irqchip = chips;
    }
    state.clock.ns = 987654321;
    state.uart.input = { 'h', 'i' };
    state.uart.scratch = 0x55;
    state.rtc.index = 0x0b;
    state.rtc.bytes[0x0b] = 0x02;
    state.i8042.output = { 0xFA, 0x14 };
    return state;
}

void put_u32(std::vector<u8>& bytes, size_t at, u32 value) { std::memcpy(bytes.data() + at, &value, 4); }
void put_u64(std::vector<u8>& bytes, size_t at, u64 value) { std::memcpy(bytes.data() + at, &value, 8); }
u64 get_u64(std::vector<u8> const& bytes, size_t at)
{
    u64 value;
    std::memcpy(&value, bytes.data() + at, 8);
    return value;
}

// Recomputes the body length and both checksums, so a test reaches the checks behind them.
void reseal(std::vector<u8>& bytes)
{
    put_u64(bytes, 16, bytes.size() - SNAPSHOT_HEADER_SIZE);
    put_u32(bytes, 24, storage::crc32c(std::span(bytes).subspan(SNAPSHOT_HEADER_SIZE)));
    put_u32(bytes, 28, storage::crc32c(std::span(bytes).first(28)));
}

// Where the section `name` starts (its 16-byte header).
size_t section_at(std::vector<u8> const& bytes, char const (&name)[5])
{
    size_t offset = SNAPSHOT_HEADER_SIZE;
    while (offset < bytes.size()) {
        if (std::memcmp(bytes.data() + offset, name, 4) == 0)
            return offset;
        offset += 16 + get_u64(bytes, offset + 8);
    }
    ADD_FAILURE() << "no section " << name;
    return 0;
}

std::string refusal(std::vector<u8> const& bytes)
{
    auto decoded = decode_snapshot_state(bytes);
    if (decoded)
        return "(accepted)";
    EXPECT_EQ(decoded.error().to_string().rfind("snapshot state file: ", 0), 0u) << decoded.error().to_string();
    return decoded.error().to_string();
}

#define EXPECT_REFUSED(bytes, text) EXPECT_NE(refusal(bytes).find(text), std::string::npos) << refusal(bytes)

} // namespace

TEST(SnapshotState, EveryFieldReadsBackAsWritten)
{
    for (bool split : { true, false }) {
        auto state = sample_state(split);
        auto decoded = decode_snapshot_state(encode_snapshot_state(state));
        ASSERT_TRUE(decoded) << decoded.error().to_string();
        EXPECT_EQ(decoded->vcpus, state.vcpus);
        EXPECT_EQ(decoded->irqchip.index(), state.irqchip.index());
        if (split) {
            auto const& a = std::get<SplitIrqchip::State>(decoded->irqchip);
            auto const& b = std::get<SplitIrqchip::State>(state.irqchip);
            EXPECT_EQ(a.pic, b.pic);
            EXPECT_EQ(a.ioapic, b.ioapic);
            EXPECT_EQ(a.pit, b.pit);
        } else
            EXPECT_EQ(std::get<engine::KernelIrqchipState>(decoded->irqchip), std::get<engine::KernelIrqchipState>(state.irqchip));
        EXPECT_EQ(decoded->clock, state.clock);
        EXPECT_EQ(decoded->uart, state.uart);
        EXPECT_EQ(decoded->rtc, state.rtc);
        EXPECT_EQ(decoded->i8042, state.i8042);
        EXPECT_EQ(decoded->memory_size, state.memory_size);
        EXPECT_EQ(decoded->config.kernel_path, state.config.kernel_path);
        EXPECT_EQ(decoded->config.cpus, 2u);
        EXPECT_FALSE(decoded->config.entropy);
    }
}

TEST(SnapshotState, HeaderProblemsAreRefused)
{
    auto good = encode_snapshot_state(sample_state());
    EXPECT_REFUSED(std::vector<u8>(good.begin(), good.begin() + 20), "truncated: 20 bytes");
    EXPECT_REFUSED(std::vector<u8>(), "truncated: 0 bytes");

    auto bytes = good;
    bytes[0] = 'X';
    EXPECT_REFUSED(bytes, "wrong magic");

    bytes = good;
    bytes[17] ^= 1; // the body length, checksum not updated
    EXPECT_REFUSED(bytes, "header's CRC-32C");

    bytes = good;
    put_u32(bytes, 8, 2);
    reseal(bytes);
    EXPECT_REFUSED(bytes, "format version 2, but this kasou reads version 1");
    EXPECT_EQ(decode_snapshot_state(bytes).error().kind(), ErrorKind::Unsupported);

    bytes = good;
    put_u32(bytes, 12, 1);
    reseal(bytes);
    EXPECT_REFUSED(bytes, "header flags");
}

TEST(SnapshotState, TruncatedLengthenedOrCorruptedBodiesAreRefused)
{
    auto good = encode_snapshot_state(sample_state());
    for (size_t cut : { size_t { 1 }, size_t { 100 }, good.size() - SNAPSHOT_HEADER_SIZE }) {
        std::vector<u8> bytes(good.begin(), good.end() - static_cast<std::ptrdiff_t>(cut));
        EXPECT_REFUSED(bytes, "truncated: the header announces");
    }
    auto bytes = good;
    bytes.push_back(0);
    EXPECT_REFUSED(bytes, "1 bytes follow");
    // Any single flipped bit of the body.
    for (size_t at = SNAPSHOT_HEADER_SIZE; at < good.size(); at += 997) {
        bytes = good;
        bytes[at] ^= 0x10;
        EXPECT_REFUSED(bytes, "body's CRC-32C");
    }
}

TEST(SnapshotState, BadSectionFramingIsRefused)
{
    auto good = encode_snapshot_state(sample_state());

    auto bytes = good;
    put_u64(bytes, section_at(bytes, "CLCK") + 8, 1ull << 40);
    reseal(bytes);
    EXPECT_REFUSED(bytes, "section CLCK: 1099511627776 bytes announced");

    bytes = good;
    put_u32(bytes, section_at(bytes, "UART") + 4, 7);
    reseal(bytes);
    EXPECT_REFUSED(bytes, "section UART: reserved word");

    bytes = good;
    std::memcpy(bytes.data() + section_at(bytes, "KBDC"), "ZZZZ", 4);
    reseal(bytes);
    EXPECT_REFUSED(bytes, "unknown section ZZZZ");

    bytes = good;
    std::memcpy(bytes.data() + section_at(bytes, "KBDC"), "CLCK", 4);
    reseal(bytes);
    EXPECT_REFUSED(bytes, "section CLCK appears twice");

    bytes = good;
    bytes.resize(section_at(bytes, "KBDC"));
    reseal(bytes);
    EXPECT_REFUSED(bytes, "section KBDC is missing");

    bytes = good;
    bytes.resize(bytes.size() + 5);
    reseal(bytes);
    EXPECT_REFUSED(bytes, "truncated section header");

    // A section longer than its fields.
    bytes = good;
    size_t clock = section_at(bytes, "CLCK");
    bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(clock + 16 + 8), u8 { 0 });
    put_u64(bytes, clock + 8, 9);
    reseal(bytes);
    EXPECT_REFUSED(bytes, "section CLCK: bytes left over");

    // Both kinds of interrupt controllers.
    auto kernel = encode_snapshot_state(sample_state(false));
    size_t kirq = section_at(kernel, "KIRQ");
    bytes = good;
    bytes.insert(bytes.end(), kernel.begin() + static_cast<std::ptrdiff_t>(kirq),
        kernel.begin() + static_cast<std::ptrdiff_t>(kirq + 16 + get_u64(kernel, kirq + 8)));
    reseal(bytes);
    EXPECT_REFUSED(bytes, "exactly one of the sections SIRQ");
}

TEST(SnapshotState, CountsAndValuesOutOfRangeAreRefusedBeforeAnythingIsAllocated)
{
    auto good = encode_snapshot_state(sample_state());
    size_t vcpus = section_at(good, "VCPU") + 16;

    auto bytes = good;
    put_u32(bytes, vcpus, 0xffffffff);
    reseal(bytes);
    EXPECT_REFUSED(bytes, "section VCPU: list of 4294967295 elements (at most 4096)");

    bytes = good;
    put_u32(bytes, vcpus, 4000);
    reseal(bytes);
    EXPECT_REFUSED(bytes, "longer than the");

    bytes = good;
    put_u32(bytes, vcpus + 4, 0x7fffffff); // vCPU 0's CPUID entry count
    reseal(bytes);
    EXPECT_REFUSED(bytes, "section VCPU: list of 2147483647 elements (at most 1024)");

    // vCPU 0's first CPUID entry's significant_index flag is a byte that must be 0 or 1.
    bytes = good;
    bytes[vcpus + 4 + 4 + 8] = 2;
    reseal(bytes);
    EXPECT_REFUSED(bytes, "a flag holds 2");

    bytes = good;
    size_t uart = section_at(bytes, "UART") + 16;
    put_u32(bytes, uart + 8, 5000); // pending input bytes
    reseal(bytes);
    EXPECT_REFUSED(bytes, "section UART: byte string of 5000 elements (at most 4096)");

    bytes = good;
    size_t config = section_at(bytes, "CONF") + 16;
    bytes[config + 4] = '[';
    reseal(bytes);
    EXPECT_REFUSED(bytes, "section CONF");
}

TEST(SnapshotState, PartsThatDisagreeAreRefused)
{
    auto state = sample_state();
    state.vcpus.pop_back();
    EXPECT_REFUSED(encode_snapshot_state(state), "1 vCPU states for a machine of 2 vCPUs");

    state = sample_state();
    state.memory_size = 32 << 20;
    EXPECT_REFUSED(encode_snapshot_state(state), "memory size 33554432 differs from the machine's 67108864");

    state = sample_state();
    state.vcpus[1].mp_state = static_cast<arch::x86_64::MpState>(9);
    EXPECT_REFUSED(encode_snapshot_state(state), "MP state is 9 (at most 4)");
}
