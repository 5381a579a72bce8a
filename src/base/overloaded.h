#pragma once

namespace kasou {

// A visitor made of lambdas, one per alternative of a std::variant:
// std::visit(Overloaded { [](A const&) { ... }, [](B const&) { ... } }, value).
template<class... Handlers>
struct Overloaded : Handlers... {
    using Handlers::operator()...;
};

// Clang 14 does not yet deduce an aggregate's template arguments by itself (C++20 P1816).
template<class... Handlers>
Overloaded(Handlers...) -> Overloaded<Handlers...>;

} // namespace kasou
