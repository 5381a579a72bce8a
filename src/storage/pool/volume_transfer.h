#pragma once

#include <string>

#include "storage/pool/pool_admin.h"

namespace kasou::storage {

// Copies a raw image file into volume VOL of the pool, creating the volume (sized to the image,
// rounded up to 512 bytes) if it does not exist. Zero ranges of the image are not written, so
// they allocate nothing; an existing volume must be at least as large as the image.
ErrorOr<void> import_image(PoolHandle& pool, std::string const& volume, std::string const& path, ProgressFunction const& progress);

// Writes volume VOL to a raw image file (created or truncated), leaving holes where nothing is
// allocated, so the file is as sparse as the volume.
ErrorOr<void> export_image(PoolHandle& pool, std::string const& volume, std::string const& path, ProgressFunction const& progress);

} // namespace kasou::storage
