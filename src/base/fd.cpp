#include "base/fd.h"

#include <unistd.h>

namespace kasou {

void Fd::reset()
{
    if (m_fd >= 0)
        ::close(m_fd);
    m_fd = -1;
}

} // namespace kasou
