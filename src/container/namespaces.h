#pragma once

// linux.namespaces as system calls: the CLONE_NEW* flags of the new ones, and setns(2) into the
// ones given by path.

#include "base/error.h"
#include "base/types.h"
#include "container/config.h"

namespace kasou::container {

int namespace_flag(NamespaceType type);
// The CLONE_NEW* flags of every namespace the container gets anew (no path).
u64 new_namespace_flags(Linux const& linux);
// Joins the namespaces given by path. `for_children`: only pid and time, whose setns changes the
// namespace of the caller's future children (done by `create` before clone3); otherwise every other
// one, the user namespace first (it owns the rest) and the mount namespace last (its paths resolve
// in the caller's mount namespace until then).
ErrorOr<void> join_namespaces(Linux const& linux, bool for_children);

} // namespace kasou::container
