#pragma once

// Shared by the I/O engine and NBD unit tests: scratch files that clean up after themselves.

#include <cstdlib>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>

#include "base/fd.h"
#include "base/sys_file.h"
#include "base/try.h"

namespace kasou::storage::testing {

// A file under $TMPDIR (or /tmp), sparse, of the given size; removed when the object goes away.
class ScratchFile {
public:
    explicit ScratchFile(u64 size)
    {
        char const* dir = std::getenv("TMPDIR");
        m_path = std::string(dir && *dir ? dir : "/tmp") + "/kasou-io-test.XXXXXX";
        int fd = ::mkstemp(m_path.data());
        EXPECT_GE(fd, 0);
        Fd owner(fd);
        MUST(sys::ftruncate(fd, size));
    }
    ~ScratchFile() { ::unlink(m_path.c_str()); }
    ScratchFile(ScratchFile const&) = delete;
    ScratchFile& operator=(ScratchFile const&) = delete;

    std::string const& path() const { return m_path; }

private:
    std::string m_path;
};

} // namespace kasou::storage::testing
