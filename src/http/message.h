#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace kasou::http {

// One HTTP request as a service sees it, already read whole and within the server's limits. The
// method is upper case as sent ("GET", "PUT"); `target` is the request target as sent (path and
// any query); `body` the payload (empty when there is none).
struct Request {
    std::string method;
    std::string target;
    std::string body;
};

// The answer to a request. A body, when there is one, is sent as `content_type`; a 204 has none.
struct Response {
    unsigned status { 204 };
    std::string body;
    std::string content_type { "application/json" };
};

// What a server serves: `handle` answers a well-formed request; `refuse` words the answer to one
// the server itself turns away (malformed, too large) with the given 4xx status and reason, in
// the service's own error format.
struct Service {
    std::function<Response(Request const&)> handle;
    std::function<Response(unsigned status, std::string_view reason)> refuse;
};

} // namespace kasou::http
