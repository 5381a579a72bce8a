/* The entry point every PVH guest defines: entry.S calls it on the BSP in long mode with the
 * identity-mapped guest-physical address of hvm_start_info. It must not return. */
#pragma once

#include "start_info.h"

__attribute__((noreturn)) void guest_main(struct hvm_start_info const *start_info);
