/* A test-and-set spin lock for the few structures the CPUs share (the console). Not reentrant:
 * never take it from an interrupt handler. */
#pragma once

#include <stdbool.h>

#include "arch.h"

struct spinlock {
    bool locked;
};

static inline void spin_lock(struct spinlock *lock)
{
    while (__atomic_test_and_set(&lock->locked, __ATOMIC_ACQUIRE))
        cpu_relax();
}

static inline void spin_unlock(struct spinlock *lock) { __atomic_clear(&lock->locked, __ATOMIC_RELEASE); }
