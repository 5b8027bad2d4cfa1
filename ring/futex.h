/*
 * ring/futex.h - the two futex calls the wake protocol makes, on a word
 * in a MAP_SHARED mapping (so never FUTEX_PRIVATE_FLAG). FUTEX_WAIT only
 * reads the word, which is why consumers can sleep on their read-only
 * mapping of the data region.
 */
#ifndef SB_RING_FUTEX_H
#define SB_RING_FUTEX_H

#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/*
 * Sleep while *word == expected, at most timeout (relative; NULL: no
 * limit). Returns 0 when woken (or spuriously), -EAGAIN when the word
 * already differed, -ETIMEDOUT, -EINTR.
 */
static inline int sb__futex_wait(const uint32_t *word, uint32_t expected,
				 const struct timespec *timeout)
{
	if (syscall(SYS_futex, word, FUTEX_WAIT, expected, timeout, NULL, 0) == 0)
		return 0;
	return -errno;
}

/* Wake up to n sleepers on word. Returns how many were woken, or -errno. */
static inline int sb__futex_wake(const uint32_t *word, int n)
{
	long r = syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);

	return r < 0 ? -errno : (int)r;
}

#endif
