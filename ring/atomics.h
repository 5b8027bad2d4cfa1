/*
 * ring/atomics.h - the only place snapbridge touches shared words.
 *
 * Every load or store of a word that another thread or process may
 * access at the same time goes through one of these wrappers. Each call
 * site's comment names the access it pairs with. The data region is
 * shared with processes built from other compilers, so these are plain
 * lock-free GCC/Clang __atomic builtins on naturally aligned fixed-width
 * words, never library types with their own layout.
 */
#ifndef SB_RING_ATOMICS_H
#define SB_RING_ATOMICS_H

#include <stdint.h>

#define sb_load_relaxed(p)	   __atomic_load_n((p), __ATOMIC_RELAXED)
#define sb_load_acquire(p)	   __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define sb_store_relaxed(p, v)	   __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define sb_store_release(p, v)	   __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define sb_fetch_add_relaxed(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define sb_fetch_add_release(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELEASE)
/* Exchanges: taking a lock (acquire), handing an object between threads (acq_rel). */
#define sb_exchange_acquire(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQUIRE)
#define sb_exchange_acq_rel(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)

/*
 * Read-modify-writes with one-sided ordering, for the wake protocol's
 * private words (ring/wake.h): the arm flag and the waker's kick word.
 */
#define sb_fetch_or_release(p, v)  __atomic_fetch_or((p), (v), __ATOMIC_RELEASE)
#define sb_fetch_or_acq_rel(p, v)  __atomic_fetch_or((p), (v), __ATOMIC_ACQ_REL)
#define sb_fetch_and_acquire(p, v) __atomic_fetch_and((p), (v), __ATOMIC_ACQUIRE)
#define sb_fetch_and_relaxed(p, v) __atomic_fetch_and((p), (v), __ATOMIC_RELAXED)

/*
 * Sequentially consistent accesses: the watch-count reservation, and the
 * wake protocol's fallback fence when membarrier() is unavailable.
 */
#define sb_fetch_add_seqcst(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define sb_load_seqcst(p)	  __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define sb_store_seqcst(p, v)	  __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define sb_exchange_seqcst(p, v)  __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define sb_fence_seqcst()	  __atomic_thread_fence(__ATOMIC_SEQ_CST)
/*
 * Orders this thread's accesses for the compiler only. The wake
 * protocol's store path uses it where the other side's membarrier()
 * supplies the hardware fence (liburcu's sys_membarrier scheme).
 */
#define sb_compiler_barrier() __atomic_signal_fence(__ATOMIC_SEQ_CST)
/* Compare-and-swap: true when *p held *expected and now holds v; else *expected = *p. */
#define sb_cas(p, expected, v)                                                                     \
	__atomic_compare_exchange_n((p), (expected), (v), 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)

/*
 * Seqlock-style fences. A writer that publishes "these bytes are about to
 * change" (a tail, a stamp) and then rewrites them puts sb_fence_release()
 * between the two; a reader that copies bytes and then re-checks that word
 * puts sb_fence_acquire() between the two. On x86 both are compiler
 * barriers only.
 */
#define sb_fence_acquire() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define sb_fence_release() __atomic_thread_fence(__ATOMIC_RELEASE)

/* One step of a spin on a shared word: tells the CPU, not the compiler, to back off. */
static inline void sb_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#endif
