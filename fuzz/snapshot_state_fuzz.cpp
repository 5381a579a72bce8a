// A hostile snapshot state file against its parser. The input is used three ways (its first byte
// chooses): as byte patches over a valid state file, resealed with a correct length and CRC-32C so
// the patches reach the section parser; as a whole body, resealed; or as the whole file as it is.
// Whatever the parser accepts must encode again and decode to the same vCPU state.

#include <cstdlib>
#include <cstring>

#include "storage/pool/crc32c.h"
#include "vmm/snapshot_state.h"

using namespace kasou;
using namespace kasou::vmm;

namespace {

std::vector<u8> sample_file()
{
    SnapshotState state;
    state.config.kernel_path = "/guest.elf";
    state.config.cpus = 2;
    state.config.memory = 64 << 20;
    state.memory_size = 64 << 20;
    state.vcpus.resize(2);
    state.vcpus[0].cpuid = { { 1, 0, false, 1, 2, 3, 4 } };
    state.vcpus[1].msrs = { { 0x10, 5 } };
    state.uart.input = { 'x' };
    return encode_snapshot_state(state);
}

void reseal(std::vector<u8>& bytes)
{
    u64 length = bytes.size() - SNAPSHOT_HEADER_SIZE;
    std::memcpy(bytes.data() + 16, &length, 8);
    u32 body = storage::crc32c(std::span(bytes).subspan(SNAPSHOT_HEADER_SIZE));
    std::memcpy(bytes.data() + 24, &body, 4);
    u32 header = storage::crc32c(std::span(bytes).first(28));
    std::memcpy(bytes.data() + 28, &header, 4);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    static std::vector<u8> const sample = sample_file();
    if (size == 0)
        return 0;
    std::vector<u8> file;
    switch (data[0] % 3) {
    case 0: // patches: (u16 offset into the body, u8 value) triples
        file = sample;
        for (size_t i = 1; i + 3 <= size; i += 3) {
            size_t offset = SNAPSHOT_HEADER_SIZE + (data[i] | data[i + 1] << 8) % (sample.size() - SNAPSHOT_HEADER_SIZE);
            file[offset] = data[i + 2];
        }
        reseal(file);
        break;
    case 1:
        file.assign(sample.begin(), sample.begin() + SNAPSHOT_HEADER_SIZE);
        file.insert(file.end(), data + 1, data + size);
        reseal(file);
        break;
    default:
        file.assign(data + 1, data + size);
        break;
    }
    auto decoded = decode_snapshot_state(file);
    if (!decoded)
        return 0;
    auto again = decode_snapshot_state(encode_snapshot_state(*decoded));
    if (!again || again->vcpus != decoded->vcpus || again->uart != decoded->uart)
        std::abort();
    return 0;
}
