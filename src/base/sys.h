#pragma once

// Every system call wrapper, by domain. New code includes the sys_<domain>.h it uses; this header
// serves the callers that have not moved yet.

#include "base/sys_affinity.h"
#include "base/sys_event.h"
#include "base/sys_file.h"
#include "base/sys_memory.h"
#include "base/sys_path.h"
#include "base/sys_process.h"
#include "base/sys_random.h"
#include "base/sys_signal.h"
#include "base/sys_socket.h"
