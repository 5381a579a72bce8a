#include "base/atomic_file.h"

#include <fcntl.h>

#include <filesystem>

#include "base/sys_file.h"
#include "base/sys_path.h"
#include "base/try.h"

namespace kasou {

ErrorOr<void> write_file_atomically(std::string const& path, std::string_view text)
{
    std::string temporary = path + ".tmp";
    {
        Fd fd = TRY(sys::open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        TRY(sys::write_exact(fd.get(), text.data(), text.size()));
        TRY(sys::fsync(fd.get()));
    }
    TRY(sys::rename(temporary, path));
    std::string directory = std::filesystem::path(path).parent_path().string();
    Fd directory_fd = TRY(sys::open(directory.empty() ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    return sys::fsync(directory_fd.get());
}

} // namespace kasou
