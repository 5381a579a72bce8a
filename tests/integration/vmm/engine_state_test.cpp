// The execution-engine seam on KVM: a running vCPU's whole state read through engine::Vcpu and
// written into a fresh vCPU of a fresh VM (or back into the same vCPU) lets the guest go on exactly
// where the state was taken, and kick() brings a vCPU out of a guest that never exits. The guest is
// a few instructions of 64-bit code that keep a counter in XMM0 and report it on port 0x80, so a
// lost general, system or SSE register shows as a wrong count.

#include <chrono>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "arch/x86_64/boot_cpu_state.h"
#include "base/size.h"
#include "base/try.h"
#include "engine/engine.h"
#include "kvm/kvm_engine.h"
#include "memory/guest_memory.h"

using namespace kasou;
using namespace std::chrono_literals;

namespace {

constexpr u64 MEMORY_SIZE = 16 * MiB;
constexpr u64 CODE = 0x100000;
constexpr u16 REPORT_PORT = 0x80;
constexpr u64 CR4_OSFXSR = 1u << 9;
constexpr u64 CR4_OSXMMEXCPT = 1u << 10;

// mov eax, 1; movq xmm1, rax; pxor xmm0, xmm0
// loop: paddq xmm0, xmm1; movq rax, xmm0; out 0x80, eax; xor eax, eax; jmp loop
constexpr u8 COUNTER_GUEST[] = { 0xB8, 0x01, 0x00, 0x00, 0x00, 0x66, 0x48, 0x0F, 0x6E, 0xC8, 0x66, 0x0F, 0xEF, 0xC0, 0x66, 0x0F, 0xD4,
    0xC1, 0x66, 0x48, 0x0F, 0x7E, 0xC0, 0xE7, 0x80, 0x31, 0xC0, 0xEB, 0xF1 };
// jmp $
constexpr u8 SPIN_GUEST[] = { 0xEB, 0xFE };

// A VM of `engine` over `memory`, with one vCPU.
struct OneVcpuVm {
    std::unique_ptr<engine::Vm> vm;
    std::unique_ptr<engine::Vcpu> vcpu;
};

OneVcpuVm create_vm(engine::Engine const& engine, memory::GuestMemory const& memory)
{
    OneVcpuVm result;
    result.vm = MUST(engine.create_vm({}));
    for (u32 slot = 0; slot < memory.regions().size(); ++slot) {
        auto const& region = memory.regions()[slot];
        MUST(result.vm->map_memory(slot, region.guest_physical, region.size(), region.mapping.data(), false));
    }
    result.vcpu = MUST(result.vm->create_vcpu(0));
    MUST(result.vcpu->set_cpuid(engine.supported_cpuid()));
    return result;
}

// Puts vCPU 0 in long mode at CODE with SSE enabled.
void boot_at_code(engine::Vcpu& vcpu, memory::GuestMemory const& memory)
{
    auto regs = MUST(vcpu.registers());
    auto sregs = MUST(vcpu.system_registers());
    arch::x86_64::BootEntry entry { arch::x86_64::EntryMode::Long64, CODE, 0, 0, 0, 0 };
    MUST(arch::x86_64::prepare_boot_cpu(memory, entry, regs, sregs));
    sregs.cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT;
    MUST(vcpu.set_system_registers(sregs));
    MUST(vcpu.set_registers(regs));
}

// Runs to the next report and returns the count; fails the test on any other exit.
u32 next_report(engine::Vcpu& vcpu)
{
    for (;;) {
        auto exit = vcpu.run();
        EXPECT_TRUE(exit) << exit.error().to_string();
        if (!exit)
            return 0;
        if (std::holds_alternative<engine::exit::Interrupted>(*exit))
            continue;
        auto const* io = std::get_if<engine::exit::PortIo>(&*exit);
        EXPECT_NE(io, nullptr) << "unexpected " << engine::exit_name(*exit) << " exit";
        if (!io)
            return 0;
        EXPECT_EQ(io->port, REPORT_PORT);
        EXPECT_EQ(io->direction, engine::AccessDirection::Write);
        EXPECT_EQ(io->size, 4u);
        u32 value = 0;
        std::memcpy(&value, io->data.data(), sizeof(value));
        return value;
    }
}

class EngineState : public testing::Test {
protected:
    static memory::GuestMemory create_memory() { return MUST(memory::GuestMemory::create(MEMORY_SIZE)); }

    void SetUp() override
    {
        m_engine = MUST(kvm::KvmEngine::open());
        MUST(m_memory.write(CODE, COUNTER_GUEST));
    }

    std::unique_ptr<engine::Engine> m_engine;
    memory::GuestMemory m_memory { create_memory() };
};

} // namespace

TEST_F(EngineState, AFreshVcpuGivenTheWholeStateGoesOnCounting)
{
    auto first = create_vm(*m_engine, m_memory);
    boot_at_code(*first.vcpu, m_memory);
    for (u32 expected = 1; expected <= 5; ++expected)
        ASSERT_EQ(next_report(*first.vcpu), expected);
    auto state = MUST(first.vcpu->state());
    EXPECT_FALSE(state.cpuid.empty());
    EXPECT_FALSE(state.msrs.empty());
    EXPECT_EQ(state.registers.rip, CODE + sizeof(COUNTER_GUEST) - 4) << "stopped after the OUT";

    auto second = create_vm(*m_engine, m_memory);
    MUST(second.vcpu->set_state(state));
    auto restored = MUST(second.vcpu->state());
    EXPECT_EQ(restored.registers, state.registers);
    EXPECT_EQ(restored.system, state.system);
    EXPECT_EQ(restored.fpu, state.fpu);
    EXPECT_EQ(restored.xcrs, state.xcrs);
    EXPECT_EQ(restored.cpuid, state.cpuid);
    EXPECT_EQ(restored.events, state.events);
    EXPECT_EQ(restored.mp_state, state.mp_state);
    EXPECT_EQ(restored.debug, state.debug);
    for (u32 expected = 6; expected <= 10; ++expected)
        ASSERT_EQ(next_report(*second.vcpu), expected);
}

TEST_F(EngineState, TheSameVcpuRewindsToAStateItHadBefore)
{
    auto vm = create_vm(*m_engine, m_memory);
    boot_at_code(*vm.vcpu, m_memory);
    for (u32 expected = 1; expected <= 3; ++expected)
        ASSERT_EQ(next_report(*vm.vcpu), expected);
    auto state = MUST(vm.vcpu->state());
    for (u32 expected = 4; expected <= 20; ++expected)
        ASSERT_EQ(next_report(*vm.vcpu), expected);
    MUST(vm.vcpu->set_state(state));
    EXPECT_EQ(next_report(*vm.vcpu), 4u);
    EXPECT_EQ(next_report(*vm.vcpu), 5u);
}

TEST_F(EngineState, KickBringsAVcpuOutOfAGuestThatNeverExits)
{
    MUST(m_memory.write(CODE, SPIN_GUEST));
    auto vm = create_vm(*m_engine, m_memory);
    boot_at_code(*vm.vcpu, m_memory);
    // A kick before run() makes that run() return at once; the one after enters the guest again.
    vm.vcpu->kick();
    auto early = MUST(vm.vcpu->run());
    EXPECT_TRUE(std::holds_alternative<engine::exit::Interrupted>(early));
    for (int round = 0; round < 3; ++round) {
        auto started = std::chrono::steady_clock::now();
        std::thread kicker([&] {
            std::this_thread::sleep_for(200ms);
            vm.vcpu->kick();
        });
        auto exit = MUST(vm.vcpu->run());
        kicker.join();
        EXPECT_TRUE(std::holds_alternative<engine::exit::Interrupted>(exit)) << engine::exit_name(exit);
        EXPECT_GE(std::chrono::steady_clock::now() - started, 150ms) << "run() returned before the kick";
    }
    auto regs = MUST(vm.vcpu->registers());
    EXPECT_EQ(regs.rip, CODE);
}
