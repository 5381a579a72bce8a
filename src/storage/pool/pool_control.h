#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/fd.h"

#include <nlohmann/json.hpp>

namespace kasou::storage {

class ThinPool;

// While one process holds a pool (PoolHandle: `kasou nbd serve`, `kasou run` with a volume), no
// other can open it. The pool's control socket, STATE_DIR/locks/NAME.sock, lets another kasou
// process ask the holder to act on the pool instead: one JSON request per connection, one JSON
// answer. It offers `add` (grow the pool by disks while its volumes are in use, so writes that
// met ENOSPC can go on), and whatever requests the holder adds with answer_op() (the vhost-user
// exports of `kasou pool serve`). The socket is the holder's alone (mode 0600); a connection that sends
// nothing within a few seconds, or more than 64 KiB, is dropped.
//
// One thread runs a Boost.Asio event loop (Loop, private to the .cpp) that accepts connections and
// reads their requests concurrently, each under its own deadline, so a silent client holds up no
// other; requests are carried out one at a time on that thread, so two never act on the pool at once.
class PoolControlServer {
public:
    // Listens for the pool held through `pool`, which must outlive the server.
    static ErrorOr<std::unique_ptr<PoolControlServer>> start(std::string state_dir, std::string name, std::shared_ptr<ThinPool> pool);
    // Answers requests whose "op" is `op` with `handler` (on the server's thread; the handler gets
    // the parsed request and returns the answer, {"error": "..."} for a refusal). An empty handler
    // withdraws the op; the call returns once no request is being answered with the old one.
    using Handler = std::function<nlohmann::json(nlohmann::json const& request)>;
    void answer_op(std::string const& op, Handler handler);
    // Stops answering (a request under way is finished first); the socket stays until destruction.
    void stop();
    // Stops and removes the socket.
    ~PoolControlServer();
    PoolControlServer(PoolControlServer const&) = delete;
    PoolControlServer& operator=(PoolControlServer const&) = delete;

private:
    struct Loop;

    PoolControlServer(std::string state_dir, std::string name, std::shared_ptr<ThinPool> pool, std::string path, std::unique_ptr<Loop> loop);
    void accept_next();
    // Accepts a connection that is waiting and starts reading its request.
    void answer_next();
    // The answer's JSON text for a request read in full (or the error that ended reading it).
    std::string answer(ErrorOr<std::string> const& request);
    // Carries out a parsed request; its answer's JSON text.
    std::string handle(std::string const& request);
    static std::string error_answer(std::string const& why);

    std::string m_state_dir;
    std::string m_name;
    std::shared_ptr<ThinPool> m_pool;
    std::string m_path;
    std::unique_ptr<Loop> m_loop;
    std::thread m_thread;
    std::mutex m_handlers_lock; // held while a handler runs, so answer_op() never races one
    std::map<std::string, Handler> m_handlers;
};

// The control socket of pool NAME.
std::string pool_control_path(std::string const& state_dir, std::string const& name);

// Sends `request` to the process holding pool NAME and returns its answer when it is {"ok": true,
// ...}. nullopt when no process answers on the pool's control socket; an error carrying the
// holder's "error" text otherwise.
std::optional<ErrorOr<nlohmann::json>> ask_holder(std::string const& state_dir, std::string const& name, nlohmann::json const& request);

// Asks the process holding pool NAME to add the disks (see add_disks()). nullopt when no process
// answers on the pool's control socket (nobody holds the pool, or its holder died); otherwise
// the holder's outcome.
std::optional<ErrorOr<void>> ask_holder_to_add(std::string const& state_dir, std::string const& name, std::vector<std::string> const& disks,
    bool force);

} // namespace kasou::storage
