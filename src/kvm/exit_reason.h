#pragma once

#include <string>

#include "base/types.h"

namespace kasou::kvm {

// "KVM_EXIT_IO (2)" for a kvm_run exit_reason value; unknown values are named by number.
std::string exit_reason_name(u32 reason);

} // namespace kasou::kvm
