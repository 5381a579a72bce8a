#include <gtest/gtest.h>

#include "kvm/exit_reason.h"
#include "kvm/variable_size_abi.h"

using namespace kasou::kvm;
namespace kabi = kasou::kvm::abi;

// The request numbers the kernel defines for these ioctls (from the C view of <linux/kvm.h>, where
// the headers are 8 or 4 bytes); a C++ compile of the same macros gives different numbers.
TEST(VariableSizeAbi, IoctlNumbersMatchTheKernel)
{
    EXPECT_EQ(kabi::GET_SUPPORTED_CPUID, 0xc008ae05ul);
    EXPECT_EQ(kabi::SET_CPUID2, 0x4008ae90ul);
    EXPECT_EQ(kabi::GET_MSR_INDEX_LIST, 0xc004ae02ul);
    EXPECT_EQ(kabi::GET_MSRS, 0xc008ae88ul);
    EXPECT_EQ(kabi::SET_MSRS, 0x4008ae89ul);
    EXPECT_EQ(kabi::SET_GSI_ROUTING, 0x4008ae6aul);
    EXPECT_EQ(kabi::GET_XSAVE, 0x9000aea4ul);
    EXPECT_EQ(kabi::SET_XSAVE, 0x5000aea5ul);
}

TEST(VariableSizeAbi, EntriesFollowTheHeader)
{
    kabi::VariableSizeBuffer<kabi::CountAndPadding, kvm_cpuid_entry2> buffer(3);
    buffer.set_header({ 3, 0 });
    auto entries = buffer.entries(3);
    ASSERT_EQ(entries.size(), 3u);
    EXPECT_EQ(reinterpret_cast<kasou::u8*>(entries.data()) - static_cast<kasou::u8*>(buffer.data()), 8);
    EXPECT_EQ(buffer.entries(10).size(), 3u) << "never more than the capacity";
}

TEST(ExitReason, NamesKnownAndUnknownReasons)
{
    EXPECT_EQ(exit_reason_name(KVM_EXIT_IO), "KVM_EXIT_IO (2)");
    EXPECT_EQ(exit_reason_name(KVM_EXIT_SHUTDOWN), "KVM_EXIT_SHUTDOWN (8)");
    EXPECT_EQ(exit_reason_name(9999), "exit reason 9999");
}
