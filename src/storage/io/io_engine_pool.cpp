#include "storage/io/io_engine_pool.h"

#include "base/try.h"

namespace kasou::storage {

IoEnginePool::Lease::~Lease()
{
    if (m_pool && m_engine)
        m_pool->give_back(std::move(m_engine));
}

ErrorOr<IoEnginePool::Lease> IoEnginePool::lease()
{
    {
        std::lock_guard lock(m_mutex);
        if (!m_idle.empty()) {
            auto engine = std::move(m_idle.back());
            m_idle.pop_back();
            return Lease(*this, std::move(engine));
        }
    }
    return Lease(*this, TRY(create_io_engine(m_kind, m_queue_depth)));
}

void IoEnginePool::give_back(std::unique_ptr<IoEngine> engine)
{
    // An engine left with requests in flight (an error path) is dropped rather than reused.
    if (engine->in_flight() != 0)
        return;
    std::lock_guard lock(m_mutex);
    m_idle.push_back(std::move(engine));
}

} // namespace kasou::storage
