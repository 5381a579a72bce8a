#pragma once

// The documents `kasou oci spec` and `kasou oci features` print.

#include <string>

namespace kasou::container {

// A config.json that runs `sh` in ./rootfs with the usual namespaces, mounts, masked paths and a
// small capability set (runtime-spec config.md); rootless: a user namespace mapping the caller's
// IDs to root, and no network namespace or device cgroup rules.
std::string default_spec(bool rootless, unsigned uid, unsigned gid);

// The features document of runtime-spec features.md: what this build of kasou accepts.
std::string features_document();

} // namespace kasou::container
