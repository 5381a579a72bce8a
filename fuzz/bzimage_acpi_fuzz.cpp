// Feeds arbitrary bytes to the bzImage header parser and, when a header passes, to the bzImage
// loader with the input's tail as initrd; and builds ACPI tables for a vCPU count taken from the
// input. Every outcome must be an error or a load inside guest memory, never an access outside
// either; the tables' checksums must always sum to zero.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "arch/x86_64/acpi_tables.h"
#include "arch/x86_64/bzimage.h"
#include "base/try.h"

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    using namespace kasou;
    using namespace kasou::arch::x86_64;
    static auto memory = MUST(memory::GuestMemory::create(64 * MiB));
    std::span<u8 const> input(data, size);

    if (auto header = BzImageHeader::parse(input)) {
        size_t initrd_size = size > 0x1000 ? size % 0x1000 : 0;
        KernelOptions options { false, "console=ttyS0", input.last(initrd_size), 0xE0000 };
        (void)load_bzimage(memory, input, *header, options);
    }

    u32 cpus = size >= 2 ? (u32 { data[0] } | (u32 { data[1] } << 8)) % 1024 + 1 : 1;
    std::optional<AcpiPciHost> pci;
    if (size >= 3 && (data[2] & 1))
        pci = AcpiPciHost { 0xE800'0000, 0xC000'0000, 0x2000'0000 };
    auto layout = build_acpi_tables(0xE0000, { cpus, { 0x600, 0x601, 0x602, 1, 5 }, pci });
    std::vector<u64> tables { layout.xsdt, layout.fadt, layout.madt, layout.dsdt };
    if (pci)
        tables.push_back(layout.mcfg);
    for (u64 table : tables) {
        u32 length = 0;
        std::memcpy(&length, layout.bytes.data() + table + 4, 4);
        u8 sum = 0;
        for (u64 i = table; i < table + length; ++i)
            sum = static_cast<u8>(sum + layout.bytes[i]);
        if (sum != 0)
            std::abort();
    }
    return 0;
}
