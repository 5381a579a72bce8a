#include <gtest/gtest.h>

#include <sys/mman.h>

#include "base/sys_memory.h"
#include "base/try.h"
#include "sched/memory_binding.h"
#include "sched/sysfs_source.h"

using namespace kasou::sched;

TEST(MemoryBinding, BindsAnonymousMemoryToTheHostsNode)
{
    auto topology = MUST(load_topology(""));
    constexpr kasou::u64 SIZE = 2 * kasou::MiB;
    void* memory = MUST(kasou::sys::mmap(nullptr, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    auto bound = bind_memory_to_nodes(memory, SIZE, { topology.numa_nodes()[0].os_id });
    if (!bound && bound.error().code() == ENOSYS) {
        munmap(memory, SIZE);
        GTEST_SKIP() << "kernel without NUMA support";
    }
    EXPECT_TRUE(bound) << bound.error().to_string();
    static_cast<char*>(memory)[0] = 1; // the page faults in under the policy
    // A node the host does not have is refused.
    auto absent = bind_memory_to_nodes(memory, SIZE, { 1000 });
    EXPECT_FALSE(absent);
    EXPECT_FALSE(bind_memory_to_nodes(memory, SIZE, {}));
    munmap(memory, SIZE);
}
