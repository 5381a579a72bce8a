#include <gtest/gtest.h>

#include "arch/x86_64/elf_image.h"
#include "elf_builder.h"

using namespace kasou;
using namespace kasou::arch::x86_64;

namespace {

std::string error_of(std::vector<u8> const& image)
{
    auto result = ElfImage::parse(image);
    EXPECT_FALSE(result.has_value());
    return result ? std::string() : result.error().to_string();
}

} // namespace

TEST(ElfImage, ParsesSegmentsAndNotes)
{
    auto image = test::build_elf64(0x100000, { { 0x100000, { 1, 2, 3 }, 0x2000 }, { 0x200000, { 4 }, 1 } },
        { { "Xen", 18, test::pvh_entry_description(0x100000) }, { "Linux", 1, { 9, 9 } } });
    auto elf = ElfImage::parse(image).value();
    EXPECT_TRUE(elf.is_64bit);
    ASSERT_EQ(elf.segments.size(), 2u);
    EXPECT_EQ(elf.segments[0].physical_address, 0x100000u);
    EXPECT_EQ(elf.segments[0].file_size, 3u);
    EXPECT_EQ(elf.segments[0].memory_size, 0x2000u);
    ASSERT_NE(elf.find_note("Xen", 18), nullptr);
    EXPECT_EQ(elf.find_note("Xen", 18)->description.size(), 4u);
    ASSERT_NE(elf.find_note("Linux", 1), nullptr);
    EXPECT_EQ(elf.find_note("Linux", 2), nullptr);
}

TEST(ElfImage, RefusesCorruptImages)
{
    auto good = test::build_pvh_guest({ 0xf4, 0xf4 });
    EXPECT_NE(error_of({ 'M', 'Z' }).find("not an ELF"), std::string::npos);

    auto truncated = good;
    truncated.resize(40);
    EXPECT_NE(error_of(truncated).find("past the end"), std::string::npos);

    auto truncated_payload = good;
    truncated_payload.pop_back();
    EXPECT_NE(error_of(truncated_payload).find("past the end"), std::string::npos);

    auto big_endian = good;
    big_endian[EI_DATA] = ELFDATA2MSB;
    EXPECT_NE(error_of(big_endian).find("little-endian"), std::string::npos);

    auto wrong_machine = good;
    reinterpret_cast<Elf64_Ehdr*>(wrong_machine.data())->e_machine = EM_AARCH64;
    EXPECT_NE(error_of(wrong_machine).find("not x86"), std::string::npos);

    auto huge_phnum = good;
    reinterpret_cast<Elf64_Ehdr*>(huge_phnum.data())->e_phnum = 60000;
    EXPECT_FALSE(ElfImage::parse(huge_phnum));

    auto phoff_past_end = good;
    reinterpret_cast<Elf64_Ehdr*>(phoff_past_end.data())->e_phoff = ~u64 { 0 } - 8;
    EXPECT_FALSE(ElfImage::parse(phoff_past_end));
}

TEST(ElfImage, RefusesInconsistentSegments)
{
    EXPECT_NE(error_of(test::build_elf64(0, { { 0x100000, { 1, 2, 3 }, 2 } }, {})).find("more file bytes"), std::string::npos);
    EXPECT_NE(error_of(test::build_elf64(0, { { 0x100000, { 1 }, 0x1000 }, { 0x100800, { 2 }, 0x1000 } }, {})).find("overlap"),
        std::string::npos);
    EXPECT_NE(error_of(test::build_elf64(0, { { ~u64 { 0 } - 0x10, { 1 }, 0x100 } }, {})).find("overflows"), std::string::npos);
    EXPECT_NE(error_of(test::build_elf64(0, {}, { { "Xen", 18, test::pvh_entry_description(0) } })).find("no loadable segment"),
        std::string::npos);
}

TEST(ElfImage, RefusesNotesRunningPastTheirSegment)
{
    auto image = test::build_pvh_guest();
    // The PT_NOTE header is the first program header; shrink its size so the note no longer fits.
    auto* note = reinterpret_cast<Elf64_Phdr*>(image.data() + sizeof(Elf64_Ehdr));
    ASSERT_EQ(note->p_type, PT_NOTE);
    note->p_filesz = sizeof(Elf64_Nhdr) + 2;
    EXPECT_NE(error_of(image).find("runs past the end of its segment"), std::string::npos);
}
