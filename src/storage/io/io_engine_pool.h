#pragma once

#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "storage/io/io_engine.h"

namespace kasou::storage {

// Engines of one kind shared by many threads: lease() hands the calling thread an idle engine for
// the duration of one operation (making one when all are busy) and takes it back when the lease
// ends, so each engine is used by one thread at a time as IoEngine requires. Thread-safe; the
// mutex is held only to take or return an engine, never during I/O.
class IoEnginePool {
public:
    class Lease {
    public:
        Lease(Lease&& other) noexcept
            : m_pool(std::exchange(other.m_pool, nullptr))
            , m_engine(std::move(other.m_engine))
        {
        }
        Lease& operator=(Lease&&) = delete;
        ~Lease();
        IoEngine& operator*() const { return *m_engine; }
        IoEngine* operator->() const { return m_engine.get(); }

    private:
        friend class IoEnginePool;
        Lease(IoEnginePool& pool, std::unique_ptr<IoEngine> engine)
            : m_pool(&pool)
            , m_engine(std::move(engine))
        {
        }
        IoEnginePool* m_pool;
        std::unique_ptr<IoEngine> m_engine;
    };

    IoEnginePool(IoEngineKind kind, u32 queue_depth)
        : m_kind(kind)
        , m_queue_depth(queue_depth)
    {
    }

    IoEngineKind kind() const { return m_kind; }
    ErrorOr<Lease> lease();

private:
    void give_back(std::unique_ptr<IoEngine> engine);

    IoEngineKind m_kind;
    u32 m_queue_depth;
    std::mutex m_mutex;
    std::vector<std::unique_ptr<IoEngine>> m_idle; // guarded by m_mutex
};

} // namespace kasou::storage
