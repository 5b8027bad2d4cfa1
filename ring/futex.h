/*
 * ring/futex.h - the futex calls snapbridge makes.
 *
 * Shared (no FUTEX_PRIVATE_FLAG): a word in a MAP_SHARED mapping that
 * another process waits on too - a consumer's bell in its own control
 * page (ring/wake.h). FUTEX_WAIT only reads the word.
 *
 * Private (FUTEX_PRIVATE_FLAG): a word only threads of this process wait
 * on - the waker thread's kick word, and the accessor word as the
 * coordinator's own threads wait on it. A private wake never reaches a
 * sleeper in another process, even one asleep on the same shared page,
 * so no consumer can make these wakes slow by sleeping threads there.
 */
#ifndef SB_RING_FUTEX_H
#define SB_RING_FUTEX_H

#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline int sb__futex_call(const uint32_t *word, int op, uint32_t val,
				 const struct timespec *timeout)
{
	long r = syscall(SYS_futex, word, op, val, timeout, NULL, 0);

	return r < 0 ? -errno : (int)r;
}

/*
 * Sleep while *word == expected, at most timeout (relative; NULL: no
 * limit). Returns 0 when woken (or spuriously), -EAGAIN when the word
 * already differed, -ETIMEDOUT, -EINTR.
 */
static inline int sb__futex_wait(const uint32_t *word, uint32_t expected,
				 const struct timespec *timeout)
{
	return sb__futex_call(word, FUTEX_WAIT, expected, timeout);
}

/* Wake up to n sleepers on word. Returns how many were woken, or -errno. */
static inline int sb__futex_wake(const uint32_t *word, int n)
{
	return sb__futex_call(word, FUTEX_WAKE, (uint32_t)n, NULL);
}

/* The same for a word only this process's threads sleep on. */
static inline int sb__futex_wait_private(const uint32_t *word, uint32_t expected,
					 const struct timespec *timeout)
{
	return sb__futex_call(word, FUTEX_WAIT_PRIVATE, expected, timeout);
}

static inline int sb__futex_wake_private(const uint32_t *word, int n)
{
	return sb__futex_call(word, FUTEX_WAKE_PRIVATE, (uint32_t)n, NULL);
}

#endif
