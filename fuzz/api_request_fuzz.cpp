// libFuzzer target: the input is everything a client sends on one connection to the per-VM API
// socket. It goes through the HTTP server exactly as for an accepted client (Boost.Beast's parser
// under the server's limits, keep-alive, pipelining), then the routes and the JSON bodies of an
// ApiController with no machine (InstanceStart reaches a launcher that refuses). Whatever the
// bytes, the server must answer with well-formed responses and close the connection once the
// input ends.
//
// PUT /logger and PUT /metrics open and write files at paths the input names; the fuzzer's
// requests to them are answered here, before the controller, so that a run cannot write over a
// file of the machine it runs on (unit.vmm_api checks those routes).

#include <cstdlib>
#include <cstring>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include "base/fd.h"
#include "http/unix_server.h"
#include "vmm/api/api_controller.h"

using namespace kasou;

namespace {

struct Harness {
    Harness()
    {
        spdlog::set_level(spdlog::level::off);
        char directory[] = "/tmp/kasou-api-fuzz.XXXXXX";
        if (!::mkdtemp(directory))
            std::abort();
        auto service = controller.service();
        auto handle = service.handle;
        service.handle = [handle](http::Request const& request) {
            auto path = request.target.substr(0, request.target.find('?'));
            if (path == "/logger" || path == "/metrics")
                return vmm::api::ApiController::fault(400, "not in the fuzz target");
            return handle(request);
        };
        auto started = http::UnixServer::start(io, std::string(directory) + "/api.sock", service, { .read_timeout = std::chrono::milliseconds(2000) });
        if (!started)
            std::abort();
        server = std::move(*started);
    }

    boost::asio::io_context io;
    vmm::api::ApiController controller { "fuzz", vmm::api::VmResources::for_api({}),
        [](vmm::MachineConfig const&) -> ErrorOr<vmm::Machine*> { return make_error("no machine in the fuzz target"); } };
    std::unique_ptr<http::UnixServer> server;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(u8 const* data, size_t size)
{
    static Harness harness;
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) != 0)
        std::abort();
    Fd client(pair[0]);
    harness.server->serve(Fd(pair[1]));

    // Send the input as the server takes it, read what it answers, until it closes.
    std::string answers;
    size_t sent = 0;
    bool shut = false;
    char buffer[65536];
    for (;;) {
        harness.io.poll();
        if (sent < size) {
            ssize_t n = ::send(client.get(), data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                sent += static_cast<size_t>(n);
        } else if (!shut) {
            ::shutdown(client.get(), SHUT_WR);
            shut = true;
        }
        ssize_t got = ::recv(client.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            break;
        if (got > 0)
            answers.append(buffer, static_cast<size_t>(got));
        else
            harness.io.run_one_for(std::chrono::milliseconds(1));
    }
    if (!answers.empty() && !answers.starts_with("HTTP/1.1 "))
        std::abort(); // the server wrote something that is not a response
    return 0;
}
