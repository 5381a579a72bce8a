#include "storage/block_device.h"

namespace kasou::storage {

void BlockDevice::transfer_batch(std::span<BlockTransfer> transfers)
{
    for (auto& transfer : transfers) {
        auto result = transfer.write ? write(transfer.offset, transfer.buffer, transfer.fua) : read(transfer.offset, transfer.buffer);
        if (!result)
            transfer.error = result.error();
    }
}

} // namespace kasou::storage
