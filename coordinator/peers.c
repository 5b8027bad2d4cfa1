/*
 * coordinator/peers.c - the attached consumers (coordinator/peers.h):
 * admitting one with a control page of its own, marking its arms (the
 * wake protocol's M1-M4), the waker thread that rings them (K1, F1-F3),
 * the heartbeat's safety net, the listing, and the copy of the listing
 * consumers read from the data region (its seqlock: ring/peers.h).
 */
#define _GNU_SOURCE
#include "peers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <snapbridge/bridge.h>

#include "../ring/clock.h"
#include "../ring/error.h"
#include "../ring/peers.h"
#include "../shm/handover.h"
#include "../shm/shm.h"
#include "bridge_internal.h"

/* Linux's PID_MAX_LIMIT: a claimed pid outside 1..this is shown as 0. */
#define SB_PID_MAX 4194304

/* F1-F3, with the lock held. */
static void ring(struct sb_peer *p, uint32_t mode)
{
	p->armed = 0; /* F1 */
	sb__wake_ring(p->page, p->fd, mode);
}

static bool live(const struct sb_peer *p)
{
	return p->fd >= 0 && p->page;
}

/* ---- the waker thread ---------------------------------------------------- */

static void *waker_main(void *arg)
{
	struct sb_peer_table *t = arg;
	struct sb_wake *w = &t->b->wake;

	while (!sb__wake_stopped(w)) {
		uint32_t chans = sb__wake_take(w); /* K1 */
		if (!chans)
			continue;
		pthread_mutex_lock(&t->lock);
		for (uint32_t i = 0; i < SB_PEER_MAX; i++) {
			struct sb_peer *p = &t->peer[i];
			if (live(p) && p->armed && (p->arm.chans & chans))
				ring(p, p->armed);
		}
		pthread_mutex_unlock(&t->lock);
	}
	return NULL;
}

int sb__peers_init(struct sb_peer_table *t, struct sb_bridge *b)
{
	memset(t, 0, sizeof(*t));
	t->b = b;
	t->view = (struct sb_wake_view){ &b->log, &b->aux, &b->events, b->hot };
	for (uint32_t i = 0; i < SB_PEER_MAX; i++)
		t->peer[i].fd = -1;
	pthread_mutex_init(&t->lock, NULL);
	int err = -pthread_create(&t->waker, NULL, waker_main, t);
	if (err) {
		pthread_mutex_destroy(&t->lock);
		return sb__fail(err, "cannot start the waker thread: %s", strerror(-err));
	}
	t->waker_started = true;
	return 0;
}

/* Free entry p; close its connection unless the caller keeps it. Lock held. */
static void forget(struct sb_peer_table *t, struct sb_peer *p, bool close_fd)
{
	if (p->page)
		munmap(p->page, SB_CTL_SIZE);
	if (p->fd >= 0) {
		if (close_fd)
			close(p->fd);
		t->count--;
	}
	memset(p, 0, sizeof(*p));
	p->fd = -1;
}

void sb__peers_fini(struct sb_peer_table *t)
{
	if (t->waker_started) {
		sb__wake_stop(&t->b->wake);
		pthread_join(t->waker, NULL);
	}
	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < SB_PEER_MAX; i++)
		forget(t, &t->peer[i], true);
	pthread_mutex_unlock(&t->lock);
	pthread_mutex_destroy(&t->lock);
}

/* ---- admitting and dropping ------------------------------------------------ */

/* A fresh control page for one consumer: its memfd and our mapping of it. */
static int make_page(struct sb_shm *page)
{
	int err = sb__shm_create("snapbridge-ctl", SB_CTL_SIZE, F_SEAL_SEAL, page);

	if (!err)
		sb__ctl_init(page->map);
	return err;
}

int sb__peers_admit(struct sb_peer_table *t, int fd, int32_t pid, uint32_t *slot_out)
{
	struct sb_bridge *b = t->b;
	struct sb_shm page = { .fd = -1 };
	int fds[SB_HELLO_FDS] = { -1, -1 };
	struct sb_hello h;
	uint32_t slot = SB_PEER_MAX;

	int err = make_page(&page);
	if (!err)
		err = sb__shm_ro_fd(&b->data, &fds[SB_HELLO_FD_DATA]);
	if (!err) {
		/* In the table before the hello: once it has the hello, the listing shows it. */
		pthread_mutex_lock(&t->lock);
		for (uint32_t i = 0; i < SB_PEER_MAX && slot == SB_PEER_MAX; i++)
			if (t->peer[i].fd < 0)
				slot = i;
		if (slot < SB_PEER_MAX) {
			struct sb_peer *p = &t->peer[slot];
			p->fd = fd;
			p->page = page.map;
			p->pid = pid;
			p->attached_ns = sb__mono_ns();
			t->count++;
		}
		pthread_mutex_unlock(&t->lock);
		if (slot == SB_PEER_MAX)
			err = sb__fail(-EBUSY, "all %u consumer entries are taken", SB_PEER_MAX);
	}
	if (!err) {
		fds[SB_HELLO_FD_CTL] = page.fd;
		sb__hello_accept(&h, slot, b->data.size, b->hdr->coord_pid,
				 b->hdr->coord_start_time);
		err = sb__hello_send(fd, &h, fds, SB_HELLO_FDS);
		if (err) {
			pthread_mutex_lock(&t->lock);
			forget(t, &t->peer[slot],
			       false); /* unmaps the page; fd stays the caller's */
			pthread_mutex_unlock(&t->lock);
			page.map = NULL;
		}
	}
	if (fds[SB_HELLO_FD_DATA] >= 0)
		close(fds[SB_HELLO_FD_DATA]);
	/* Our mapping keeps the page; the consumer holds the only descriptor now. */
	if (page.fd >= 0)
		close(page.fd);
	if (err) {
		if (page.map && slot == SB_PEER_MAX)
			munmap(page.map, SB_CTL_SIZE);
		return err;
	}
	if (slot_out)
		*slot_out = slot;
	return 0;
}

void sb__peers_drop(struct sb_peer_table *t, uint32_t i)
{
	pthread_mutex_lock(&t->lock);
	forget(t, &t->peer[i], true);
	pthread_mutex_unlock(&t->lock);
}

/* ---- arms -------------------------------------------------------------------- */

uint64_t sb__peers_arm_batch(struct sb_peer_table *t, uint64_t now)
{
	uint32_t chans = 0, still = 0;
	bool any = false;

	for (uint32_t i = 0; i < SB_PEER_MAX && !any; i++)
		any = t->peer[i].has_next;
	if (!any)
		return 0;
	if (now < t->next_batch_ns)
		return t->next_batch_ns - now;
	t->next_batch_ns = now + SB_ARM_BATCH_NS;

	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < SB_PEER_MAX; i++) {
		struct sb_peer *p = &t->peer[i];
		if (!p->has_next)
			continue;
		p->has_next = false;
		if (!live(p))
			continue;
		p->arm = p->next;
		/*
		 * An arm that is behind already (its consumer drained before the
		 * last publications, or lies) is rung at once and never marked:
		 * it sets no bit, so it costs no store a kick and no membarrier.
		 */
		if (sb__wake_news(&t->view, &p->arm)) {
			ring(p, p->arm.mode);
			continue;
		}
		p->armed = p->arm.mode; /* M1 */
		p->fresh = true;
		chans |= p->arm.chans;
	}
	pthread_mutex_unlock(&t->lock);
	if (!chans)
		return 0;

	sb__wake_arm_publish(&t->b->wake, chans); /* M2-M3 */

	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < SB_PEER_MAX; i++) {
		struct sb_peer *p = &t->peer[i];
		/* M4: published since the positions it gave? A lie only rings its teller. */
		if (p->fresh && p->armed && sb__wake_news(&t->view, &p->arm))
			ring(p, p->armed);
		p->fresh = false;
		if (live(p) && p->armed)
			still |= p->arm.chans;
	}
	sb__wake_arm_keep(&t->b->wake, still);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void sb__peers_net(struct sb_peer_table *t)
{
	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < SB_PEER_MAX; i++) {
		struct sb_peer *p = &t->peer[i];
		if (live(p) && p->armed && sb__wake_news(&t->view, &p->arm))
			ring(p, p->armed);
	}
	pthread_mutex_unlock(&t->lock);
}

void sb__peers_ring_all(struct sb_peer_table *t)
{
	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < SB_PEER_MAX; i++)
		if (live(&t->peer[i]))
			ring(&t->peer[i], SB_ARM_FUTEX | SB_ARM_POLL);
	pthread_mutex_unlock(&t->lock);
}

/* ---- listing ------------------------------------------------------------------- */

/* The pid to show: SO_PEERCRED's, else the consumer's claim if it can be a pid. */
static int32_t shown_pid(const struct sb_peer *p)
{
	int32_t claimed = sb_load_relaxed(&p->page->pid); /* a claim: bounded, never trusted */

	return p->pid ? p->pid : (claimed > 0 && claimed <= SB_PID_MAX ? claimed : 0);
}

/* One entry as sb_consumer_info, its page's claims bounded. Lock held. */
static void describe(const struct sb_peer *p, uint32_t slot, uint64_t stores, uint64_t now,
		     struct sb_consumer_info *c)
{
	uint64_t cursor = sb_load_relaxed(&p->page->cursor);	 /* claimed */
	uint64_t beat = sb_load_relaxed(&p->page->heartbeat_ns); /* claimed */

	memset(c, 0, sizeof(*c));
	c->slot = slot;
	c->pid = shown_pid(p);
	c->cursor = cursor;
	c->lag_valid = cursor <= stores;
	c->lag = c->lag_valid ? stores - cursor : 0;
	c->heartbeat_age_ns = beat <= now ? now - beat : 0;
	c->attached_ns = p->attached_ns;
	/* Marked and published (M1-M4 done): a store from now on rings it. */
	c->waiting = p->armed != 0 && !p->fresh;
	c->polling = c->waiting && p->armed == SB_ARM_POLL;
}

static size_t list(struct sb_peer_table *t, struct sb_consumer_info *out, size_t cap)
{
	uint64_t stores = sb__log_newest_seq(&t->b->hot->store_seq); /* pairs with W3s */
	uint64_t now = sb__mono_ns();
	size_t n = 0;

	for (uint32_t i = 0; i < SB_PEER_MAX; i++) {
		if (!live(&t->peer[i]))
			continue;
		if (n < cap)
			describe(&t->peer[i], i, stores, now, &out[n]);
		n++;
	}
	return n;
}

void sb__peers_publish(struct sb_peer_table *t, uint64_t now)
{
	struct sb_peers *shared = (struct sb_peers *)((uint8_t *)t->b->data.map +
						      t->b->hdr->sections[SB_SEC_PEERS].offset);
	struct sb_peer_entry e[SB_PEER_MAX];
	uint32_t n = 0;

	memset(e, 0, sizeof(e));
	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < SB_PEER_MAX; i++) {
		const struct sb_peer *p = &t->peer[i];
		if (!live(p))
			continue;
		e[n].pid = shown_pid(p);
		e[n].slot = i;
		e[n].cursor = sb_load_relaxed(&p->page->cursor);	     /* claimed */
		e[n].heartbeat_ns = sb_load_relaxed(&p->page->heartbeat_ns); /* claimed */
		e[n].attached_ns = p->attached_ns;
		e[n].armed = p->armed;
		n++;
	}
	pthread_mutex_unlock(&t->lock);
	sb__peers_write(shared, e, n, now); /* D1-D2 */
}

int sb_bridge_consumers(struct sb_bridge *b, struct sb_consumer_info *out, size_t cap, size_t *n)
{
	if (!b || !n || (cap && !out))
		return sb__fail(-EINVAL, "sb_bridge_consumers: NULL argument");
	*n = 0;
	if (!b->server)
		return 0;
	struct sb_peer_table *t = sb__serve_peers(b);
	pthread_mutex_lock(&t->lock);
	*n = list(t, out, cap);
	pthread_mutex_unlock(&t->lock);
	return 0;
}
