/*
 * ring/wake.c - the wake protocol's steps, both halves (ring/wake.h has
 * the protocol and its pairs; coordinator/peers.c keeps the table the
 * coordinator's half works on).
 */
#define _GNU_SOURCE
#include "wake.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "error.h"
#include "futex.h"

/* ---- the arm message ------------------------------------------------------ */

void sb__arm_init(struct sb_arm *a, uint32_t mode, uint32_t chans)
{
	memset(a, 0, sizeof(*a));
	memcpy(a->magic, SB_ARM_MAGIC, sizeof(a->magic));
	a->mode = mode;
	a->chans = chans;
}

int sb__arm_parse(const void *buf, size_t len, struct sb_arm *out)
{
	struct sb_arm a;

	if (len != sizeof(a))
		return sb__fail(-EBADMSG, "a %zu-byte message where a %zu-byte arm belongs", len,
				sizeof(a));
	memcpy(&a, buf, sizeof(a));
	if (memcmp(a.magic, SB_ARM_MAGIC, sizeof(a.magic)) != 0)
		return sb__fail(-EBADMSG, "a message without the ARM1 magic");
	if (a.mode != SB_ARM_FUTEX && a.mode != SB_ARM_POLL)
		return sb__fail(-EBADMSG, "an arm with mode %u", a.mode);
	if (a.chans == 0 || (a.chans & ~SB_WAKE_CHANS))
		return sb__fail(-EBADMSG, "an arm for channels 0x%x", a.chans);
	*out = a;
	return 0;
}

/* ---- news ------------------------------------------------------------------ */

bool sb__wake_news(const struct sb_wake_view *v, const struct sb_arm *a)
{
	if ((a->chans & SB_WAKE_REC) && sb__log_news(v->log, a->rec_pos))
		return true;
	if ((a->chans & SB_WAKE_EV) && sb__event_head(v->events) != a->ev_cursor) /* V0 */
		return true;
	/* Aux records are committed before their head moves: the head alone tells. */
	if ((a->chans & SB_WAKE_AUX) && sb_load_acquire(v->aux->head) != a->aux_pos) /* R1 */
		return true;
	/* pairs with A2's bump (ring/accessor.h) */
	if ((a->chans & SB_WAKE_ACCESSOR) &&
	    sb_load_acquire(&v->hot->accessor_gen) != a->accessor_gen)
		return true;
	return false;
}

/* ---- the coordinator's half ----------------------------------------------- */

static long membarrier_call(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

void sb__wake_init(struct sb_wake *w, uint64_t *kicked)
{
	memset(w, 0, sizeof(*w));
	w->kicked = kicked;
	/* Registering twice (liburcu-bp does too) is harmless. */
	w->fenced = membarrier_call(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0;
}

void sb__wake_kick(struct sb_wake *w, uint32_t taken)
{
	sb_fetch_add_relaxed(w->kicked, 1); /* informational: stat and tests */
	/* N4: release pairs with K1, carrying the marks N4 acquired from M2. */
	if (sb_fetch_or_acq_rel(&w->kick, taken) & SB_KICK_ASLEEP)
		sb__futex_wake_private(&w->kick, 1);
}

void sb__wake_arm_publish(struct sb_wake *w, uint32_t chans)
{
	sb_fetch_or_release(&w->armed, chans); /* M2: pairs with N4 */
	/* M3: every thread of the process passes a full barrier between M2 and M4. */
	if (w->fenced || membarrier_call(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0)
		sb_fence_seqcst();
}

void sb__wake_arm_keep(struct sb_wake *w, uint32_t still)
{
	/*
	 * A publisher that takes a cleared bit now would find nobody to ring;
	 * the next arm on that channel sets it again (M2).
	 */
	sb_fetch_and_relaxed(&w->armed, still);
}

uint32_t sb__wake_take(struct sb_wake *w)
{
	uint32_t idle = 0;

	if (sb__wake_stopped(w))
		return 0;
	/* K1: acquire pairs with N4's release. */
	uint32_t pending = sb_exchange_acq_rel(&w->kick, 0) & SB_WAKE_CHANS;
	if (pending)
		return pending;
	if (!sb_cas(&w->kick, &idle, SB_KICK_ASLEEP))
		return 0; /* kicked just now: the caller asks again */
	sb__futex_wait_private(&w->kick, SB_KICK_ASLEEP, NULL); /* a kick or the stop wakes it */
	return 0;
}

void sb__wake_stop(struct sb_wake *w)
{
	sb_store_release(&w->stop, 1);
	/* A pending kick makes a waker that has not gone to sleep yet look again first. */
	if (sb_fetch_or_acq_rel(&w->kick, SB_WAKE_CHANS) & SB_KICK_ASLEEP)
		sb__futex_wake_private(&w->kick, 1);
}

bool sb__wake_stopped(struct sb_wake *w)
{
	return sb_load_acquire(&w->stop) != 0; /* pairs with sb__wake_stop */
}

void sb__wake_ring(struct sb_ctl *page, int fd, uint32_t mode)
{
	static const char wake = 'w';

	sb_fetch_add_release(&page->bell, 1); /* F2: pairs with C1, and with C4's kernel check */
	if (mode & SB_ARM_FUTEX)
		sb__futex_wake(&page->bell,
			       1); /* F3: one sleeper - a consumer waits in one thread */
	if ((mode & SB_ARM_POLL) && fd >= 0)
		(void)send(fd, &wake, 1, MSG_DONTWAIT | MSG_NOSIGNAL); /* F3 */
}

/* ---- the consumer's half -------------------------------------------------- */

int sb__wake_arm_send(int fd, const struct sb_arm *a)
{
	ssize_t n;

	do
		n = send(fd, a, sizeof(*a), MSG_DONTWAIT | MSG_NOSIGNAL); /* C3 */
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(*a))
		return 0;
	return n < 0 ? -errno : -EIO;
}

void sb__wake_sleep(const struct sb_ctl *page, uint32_t seen, uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };

	(void)sb__futex_wait(&page->bell, seen, &ts); /* C4: any return, the caller looks again */
}
