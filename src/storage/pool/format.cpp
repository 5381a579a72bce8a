#include "storage/pool/format.h"

#include <algorithm>
#include <cstring>
#include <fcntl.h>

#include <fmt/format.h>

#include "base/sys.h"
#include "base/utf8.h"
#include "base/try.h"
#include "storage/pool/crc32c.h"

namespace kasou::storage {

ErrorOr<Uuid> Uuid::random()
{
    Fd fd = TRY(sys::open("/dev/urandom", O_RDONLY));
    Uuid uuid;
    size_t n = TRY(sys::read(fd.get(), uuid.bytes.data(), uuid.bytes.size()));
    if (n != uuid.bytes.size())
        return make_error("short read from /dev/urandom");
    return uuid;
}

std::string Uuid::to_string() const
{
    std::string text;
    for (size_t i = 0; i < bytes.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            text += '-';
        text += fmt::format("{:02x}", bytes[i]);
    }
    return text;
}

namespace {

u32 block_crc(Block const& block)
{
    Block copy = block;
    std::memset(copy.data() + offsetof(BlockHeader, crc), 0, sizeof(u32));
    return crc32c(copy);
}

} // namespace

void seal_block(Block& block, u64 magic)
{
    auto& header = view_as<BlockHeader>(block);
    header.magic = magic;
    header.version = FORMAT_VERSION;
    header.crc = 0;
    header.crc = block_crc(block);
}

ErrorOr<void> verify_block(Block const& block, u64 magic, std::string_view what)
{
    auto const& header = view_as<BlockHeader>(block);
    if (header.magic != magic)
        return make_error(fmt::format("{}: bad magic (not written by kasou, or overwritten)", what));
    if (header.crc != block_crc(block))
        return make_error(fmt::format("{}: checksum mismatch (torn or corrupted write)", what));
    if (header.version != FORMAT_VERSION)
        return make_error(fmt::format("{}: format version {} is not supported (this kasou reads {})", what, header.version, FORMAT_VERSION));
    return {};
}

ErrorOr<void> validate_name(std::string_view name, std::string_view what)
{
    if (name.empty())
        return make_error(fmt::format("{} name is empty", what));
    for (size_t at = 0; at < name.size();) {
        size_t start = at;
        auto code = decode_utf8(name, at);
        if (!code)
            return make_error(fmt::format("{} name is not valid UTF-8 (byte {:#04x} at offset {})", what, static_cast<unsigned char>(name[start]), start));
        bool ascii_ok = (*code >= 'a' && *code <= 'z') || (*code >= 'A' && *code <= 'Z') || (*code >= '0' && *code <= '9') || *code == '_'
            || *code == '.' || *code == '-' || *code == '+';
        // Beyond ASCII any character but the C1 controls: a name may be written in any script.
        bool ok = *code < 0x80 ? ascii_ok : *code > 0x9f;
        if (!ok && (*code < 0x20 || (*code >= 0x7f && *code <= 0x9f)))
            return make_error(fmt::format("{} name contains the control character U+{:04X}; use letters, digits and _ . + -", what, static_cast<u32>(*code)));
        if (!ok)
            return make_error(fmt::format("{} name '{}' contains '{}'; use letters, digits and _ . + -", what, name, name.substr(start, at - start)));
    }
    if (name.size() >= NAME_LENGTH)
        return make_error(fmt::format("{} name '{}' is longer than {} bytes (UTF-8)", what, name, NAME_LENGTH - 1));
    if (name[0] == '.' || name[0] == '-')
        return make_error(fmt::format("{} name '{}' must not start with '{}'", what, name, name[0]));
    return {};
}

void copy_name(char (&out)[NAME_LENGTH], std::string_view name)
{
    std::memset(out, 0, NAME_LENGTH);
    std::memcpy(out, name.data(), std::min(name.size(), NAME_LENGTH - 1));
}

std::string name_of(char const (&field)[NAME_LENGTH])
{
    return std::string(field, strnlen(field, NAME_LENGTH));
}

char const* layout_name(SegmentKind kind)
{
    switch (kind) {
    case SegmentKind::Linear:
        return "linear";
    case SegmentKind::Striped:
        return "striped";
    case SegmentKind::Mirror:
        return "mirror";
    }
    return "unknown";
}

} // namespace kasou::storage
