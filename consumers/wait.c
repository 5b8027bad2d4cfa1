/*
 * consumers/wait.c - waiting for news: sb_consumer_wait (asleep on the
 * bell of our own control page), sb_consumer_arm / sb_consumer_pollfd
 * (woken through the connection), and the accessor waits' sleep.
 *
 * This is the consumer's half of ring/wake.h (C1-C4). News is judged
 * from positions, exactly: a committed record at our log position, an
 * event after our event cursor, an aux record at our aux position, for
 * the channels we have drained. A consumer with no connection (a plain
 * data descriptor, or attached by pid to a coordinator that does not
 * serve) or whose coordinator hung up on it has nobody to ring its bell,
 * and sleeps in slices of UNARMED_SLICE_MS instead.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../ring/atomics.h"
#include "../ring/clock.h"
#include "../ring/error.h"
#include "../ring/liveness.h"
#include "consumer_internal.h"

/* A sleeper looks for a dead coordinator at least this often. */
#define DEATH_SLICE_MS 50
/* Without a bell nobody wakes us: sleep in slices this long. */
#define UNARMED_SLICE_MS 10

/* The channels a wait reports: those drained so far. */
static uint32_t used_chans(const struct sb_consumer *c)
{
	static const uint32_t bit[SB_CHAN_COUNT] = {
		[SB_CHAN_REC] = SB_WAKE_REC, [SB_CHAN_EV] = SB_WAKE_EV, [SB_CHAN_AUX] = SB_WAKE_AUX
	};
	uint32_t chans = 0;

	for (int ch = 0; ch < SB_CHAN_COUNT; ch++)
		if (c->used[ch])
			chans |= bit[ch];
	return chans;
}

/* Our positions on chans, as an arm carries them. */
static void hints(const struct sb_consumer *c, uint32_t mode, uint32_t chans, uint32_t accessor_gen,
		  struct sb_arm *a)
{
	sb__arm_init(a, mode, chans);
	a->rec_pos = c->rec.pos;
	a->ev_cursor = c->ev_cursor;
	a->aux_pos = c->aux_rec.pos;
	a->accessor_gen = accessor_gen;
}

/* C2: has the writer published anything the drains this consumer uses have not read? */
static bool news(const struct sb_consumer *c)
{
	struct sb_wake_view v;
	struct sb_arm a;
	uint32_t chans = used_chans(c);

	if (!chans)
		return true; /* before any drain, everything is news */
	sb__consumer_view(c, &v);
	hints(c, SB_ARM_FUTEX, chans, 0, &a);
	return sb__wake_news(&v, &a);
}

/*
 * Is there anything left for the drains this consumer uses (all of them
 * before the first drain), a record in flight included? Used once the
 * coordinator is closed or dead, to report READY before CLOSED / DEAD.
 */
static bool unread(const struct sb_consumer *c)
{
	bool any = false;

	for (int ch = 0; ch < SB_CHAN_COUNT; ch++)
		any |= c->used[ch];
	for (int ch = 0; ch < SB_CHAN_COUNT; ch++)
		if ((!any || c->used[ch]) && sb__chan_unread(c, (enum sb_chan)ch))
			return true;
	return false;
}

static bool closed_flag(const struct sb_consumer *c)
{
	/* pairs with the release store of closed in sb_bridge_destroy */
	return sb__region_closed((const struct sb_header *)c->base);
}

/*
 * The answer that needs no waiting, if there is one: READY for news
 * (once closed, the positions decide instead), CLOSED or DEAD once the
 * coordinator is gone and everything is read.
 */
static bool settled(struct sb_consumer *c, enum sb_wait_status *status)
{
	if (news(c) && !closed_flag(c)) {
		*status = SB_WAIT_READY;
		return true;
	}
	enum sb_coord_state st = sb__consumer_coord_state(c);
	if (st == SB_COORD_ALIVE)
		return false;
	/* What was published before the close or the death comes first. */
	if (unread(c))
		*status = SB_WAIT_READY;
	else
		*status = st == SB_COORD_CLOSED ? SB_WAIT_CLOSED : SB_WAIT_DEAD;
	return true;
}

/* Spin up to c->spin_ns for news; adapt the budget to whether spinning pays. */
static bool spin(struct sb_consumer *c)
{
	uint64_t start = sb__mono_ns();

	for (unsigned i = 1;; i++) {
		if (news(c)) {
			if (c->spin_ns < SB_SPIN_MAX_NS)
				c->spin_ns *= 2;
			return true;
		}
		sb_cpu_relax();
		if ((i & 31) == 0 && sb__mono_ns() - start >= c->spin_ns)
			break;
	}
	if (c->spin_ns > SB_SPIN_MIN_NS)
		c->spin_ns /= 2;
	return false;
}

/* Someone can ring our bell: a page, a connection, and the coordinator still on it. */
static bool bell_works(const struct sb_consumer *c)
{
	return c->page && c->conn_fd >= 0 && !c->disconnected;
}

/*
 * C3: have the coordinator hold arm a for us, with the bell reading bell
 * (C1). Sent only when the arm it holds is another one or was rung since.
 * 0, or -errno when no arm could be sent (then nobody will ring).
 */
static int arm(struct sb_consumer *c, const struct sb_arm *a, uint32_t bell)
{
	if (c->armed_valid && c->armed_bell == bell && memcmp(&c->armed, a, sizeof(*a)) == 0)
		return 0;
	c->armed_valid = false;
	int err = sb__wake_arm_send(c->conn_fd, a);
	if (err) {
		if (err != -EAGAIN && err != -ENOBUFS)
			c->disconnected = true; /* it hung up: liveness says whether it lives */
		return err;
	}
	c->armed_valid = true;
	c->armed_bell = bell;
	c->armed = *a;
	return 0;
}

static void nap_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };

	nanosleep(&ts, NULL);
}

static uint64_t ms_ns(uint64_t ms)
{
	return ms * 1000000ull;
}

int sb_consumer_wait(struct sb_consumer *c, int timeout_ms, enum sb_wait_status *status)
{
	if (!c || !status)
		return sb__fail(-EINVAL, "sb_consumer_wait: NULL argument");
	uint64_t deadline =
	    timeout_ms < 0 ? UINT64_MAX : sb__mono_ns() + ms_ns((uint64_t)timeout_ms);
	bool spun = false;

	for (;;) {
		uint32_t bell = c->page ? sb__wake_bell(c->page) : 0; /* C1 */
		if (settled(c, status))				      /* C2, and liveness */
			return 0;
		uint64_t now = sb__mono_ns();
		if (now >= deadline) {
			*status = SB_WAIT_TIMEOUT;
			return 0;
		}
		if (!spun && c->mapped) {
			spun = true;
			if (spin(c))
				continue;
		}
		uint64_t left = deadline - now;
		struct sb_arm a;
		hints(c, SB_ARM_FUTEX, used_chans(c), 0, &a);
		sb__consumer_touch(c);
		if (bell_works(c) && arm(c, &a, bell) == 0) {
			uint64_t slice = ms_ns(DEATH_SLICE_MS);
			sb__wake_sleep(c->page, bell, left < slice ? left : slice); /* C4 */
		} else {
			uint64_t slice = ms_ns(UNARMED_SLICE_MS);
			nap_ns(left < slice ? left : slice);
		}
	}
}

int sb_consumer_pollfd(struct sb_consumer *c, int *fd)
{
	if (!c || !fd)
		return sb__fail(-EINVAL, "sb_consumer_pollfd: NULL argument");
	if (c->conn_fd < 0)
		return sb__fail(-EOPNOTSUPP, "only a consumer attached over a coordinator's socket "
					     "has a pollable descriptor");
	*fd = c->conn_fd;
	return 0;
}

/* Take the wake messages already delivered; they were for earlier arms. */
static void drop_wakes(struct sb_consumer *c)
{
	char sink[16];

	for (int i = 0; i < 1024; i++)
		if (recv(c->conn_fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
			return;
}

int sb_consumer_arm(struct sb_consumer *c, enum sb_wait_status *status)
{
	if (!c || !status)
		return sb__fail(-EINVAL, "sb_consumer_arm: NULL argument");
	if (c->conn_fd < 0)
		return sb__fail(-EOPNOTSUPP, "only a consumer attached over a coordinator's socket "
					     "can be armed for polling");
	drop_wakes(c);
	uint32_t bell = sb__wake_bell(c->page); /* C1 */
	if (settled(c, status))			/* C2, and liveness */
		return 0;
	if (c->disconnected)
		return sb__fail(-ENOTCONN, "the coordinator hung up on this consumer, though it "
					   "lives: nothing will ring; use sb_consumer_wait()");
	struct sb_arm a;
	hints(c, SB_ARM_POLL, used_chans(c), 0, &a);
	sb__consumer_touch(c);
	int err = arm(c, &a, bell);
	if (err == -EAGAIN || err == -ENOBUFS) {
		*status = SB_WAIT_READY; /* its queue is full: come back soon rather than hang */
		return 0;
	}
	if (err)
		return sb__fail(-ENOTCONN, "the coordinator hung up on this consumer: %s",
				strerror(-err));
	*status = SB_WAIT_ARMED;
	return 0;
}

/* ---- the accessor waits ----------------------------------------------------- */

/* B3 for a consumer: arm the bell for "accessor_gen moved from g", and sleep. */
static void accessor_sleep(void *arg, const struct sb_hot *hot, uint32_t g, uint64_t ns)
{
	struct sb_consumer *c = arg;

	if (!bell_works(c)) {
		uint64_t slice = ms_ns(UNARMED_SLICE_MS);
		nap_ns(ns < slice ? ns : slice);
		return;
	}
	uint32_t bell = sb__wake_bell(c->page);	      /* C1 */
	if (sb__accessor_gen(hot) != g) /* C2 */
		return;
	struct sb_arm a;
	hints(c, SB_ARM_FUTEX, SB_WAKE_ACCESSOR, g, &a);
	if (arm(c, &a, bell) == 0)
		sb__wake_sleep(c->page, bell, ns); /* C4 */
	else
		nap_ns(ns < ms_ns(UNARMED_SLICE_MS) ? ns : ms_ns(UNARMED_SLICE_MS));
}

static bool coordinator_gone(void *arg)
{
	return sb__consumer_coord_state(arg) != SB_COORD_ALIVE;
}

void sb__consumer_accessor_sleeper(struct sb_consumer *c, struct sb_accessor_sleeper *z)
{
	*z = (struct sb_accessor_sleeper){ .sleep = accessor_sleep,
					   .gone = coordinator_gone,
					   .arg = c,
					   .slice_ns = ms_ns(DEATH_SLICE_MS) };
}
