/*
 * sb_test_consumer - a consumer process the multi-process tests fork and
 * exec: it attaches over a coordinator's socket and either drains
 * everything until the coordinator closes or dies ("drain"), or just
 * stays attached asleep until it is killed ("hold").
 *
 *   sb_test_consumer SOCKET drain [all|multi]  prints one result line at the end
 *                                         (multi: several writers, tu_seed() seeds)
 *   sb_test_consumer SOCKET hold          prints "attached" and sleeps in wait
 *   sb_test_consumer SOCKET wait          drains, prints "attached", waits once
 *                                         (20 s at most) and prints the status
 *   sb_test_consumer SOCKET aux           drains the aux log until the coordinator
 *                                         closes or dies; one result line
 *   sb_test_consumer SOCKET advance       prints "attached", waits (30 s at most)
 *                                         for the accessor seqno to pass 0
 *   sb_test_consumer SOCKET not-trying    ... for the accessor worker to leave TRYING
 *   sb_test_consumer SOCKET follow [poll] drains records and events until the
 *                                         coordinator closes or dies, waiting at most
 *                                         FOLLOW_WAIT_MS at a time (poll: on its pollable
 *                                         descriptor); one result line with the number
 *                                         of waits that ended with news pending ("late")
 *
 * Every delivered report must hold the bytes tu_report() makes from its
 * store_seq, and every aux item what tu_aux_put() records under its
 * sequence; anything else counts as bad.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../testutil.h"

static int tally_aux(void *bad, const struct sb_aux_item *item)
{
	*(uint64_t *)bad += !tu_aux_check(item);
	return 0;
}

/* Drain the aux log until the coordinator is gone, then drain what is left. */
static int aux_mode(struct sb_consumer *c)
{
	enum sb_wait_status st = SB_WAIT_READY;
	struct sb_aux_counts a;
	uint64_t bad = 0;

	printf("attached\n");
	fflush(stdout);
	do {
		if (sb_consumer_wait(c, -1, &st) != 0)
			return 1;
		do {
			if (sb_consumer_drain_aux(c, tally_aux, &bad, &a) != 0) {
				printf("error %s\n", sb_last_error());
				return 1;
			}
		} while (a.records > 0);
	} while (st == SB_WAIT_READY);
	sb_consumer_aux_totals(c, &a);
	printf("aux records=%llu delivered=%llu lapped=%llu bad=%llu state=%s\n",
	       (unsigned long long)a.records, (unsigned long long)a.delivered,
	       (unsigned long long)a.lapped, (unsigned long long)bad,
	       st == SB_WAIT_CLOSED ? "closed" : "dead");
	sb_consumer_close(c);
	return 0;
}

/* One accessor wait from this process; prints its result and message. */
static int accessor_mode(struct sb_consumer *c, bool advance)
{
	uint64_t deadline = sb_monotonic_ns() + 30ull * 1000000000ull;
	uint64_t seqno = 0;
	int rc;

	printf("attached\n");
	fflush(stdout);
	if (advance)
		rc = sb_consumer_wait_publish_advance(c, 0, deadline, "Op::Child", &seqno);
	else
		rc = sb_consumer_wait_worker_not_trying(c, deadline, "Op::Child");
	printf("rc=%d seqno=%llu msg=%s\n", rc, (unsigned long long)seqno,
	       rc ? sb_last_error() : "");
	sb_consumer_close(c);
	return 0;
}

/* Far above any wake-up bound (50 ms asleep, one heartbeat polling): a wait this long with news
 * pending is a lost wake-up. */
#define FOLLOW_WAIT_MS 5000

/* One bounded wait, asleep or on the pollable descriptor. */
static int follow_wait(struct sb_consumer *c, bool polled, enum sb_wait_status *st)
{
	if (!polled)
		return sb_consumer_wait(c, FOLLOW_WAIT_MS, st);
	int err = sb_consumer_arm(c, st);
	if (err || *st != SB_WAIT_ARMED)
		return err;
	int fd;
	sb_consumer_pollfd(c, &fd);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	*st = poll(&p, 1, FOLLOW_WAIT_MS) == 1 ? SB_WAIT_READY : SB_WAIT_TIMEOUT;
	return 0;
}

static int follow_mode(struct sb_consumer *c, bool polled)
{
	struct tu_tally t = { 0 }; /* store order; superseded stores leave gaps */
	enum sb_wait_status st = SB_WAIT_READY;
	uint64_t waits = 0, late = 0;

	printf("attached\n");
	fflush(stdout);
	for (;;) {
		struct sb_events ev;

		if (tu_drain_to_end(c, tu_tally_entry, &t) != 0 ||
		    sb_consumer_drain_events(c, &ev) != 0) {
			printf("error %s\n", sb_last_error());
			return 1;
		}
		sb_events_free(&ev);
		if (st == SB_WAIT_CLOSED || st == SB_WAIT_DEAD)
			break;
		if (follow_wait(c, polled, &st) != 0) {
			printf("error %s\n", sb_last_error());
			return 1;
		}
		waits++;
		if (st == SB_WAIT_TIMEOUT) {
			uint64_t cursor, stores;
			sb_consumer_cursor(c, &cursor);
			sb_consumer_store_count(c, &stores);
			late += stores > cursor;
		}
	}
	struct sb_drain_counts d;
	sb_consumer_totals(c, &d);
	printf("stores=%llu delivered=%llu superseded=%llu evicted=%llu lapped=%llu torn=%llu "
	       "seen=%llu bad=%llu waits=%llu late=%llu state=%s\n",
	       (unsigned long long)d.stores, (unsigned long long)d.delivered,
	       (unsigned long long)d.superseded, (unsigned long long)d.evicted,
	       (unsigned long long)d.lapped, (unsigned long long)d.torn,
	       (unsigned long long)t.delivered, (unsigned long long)t.bad,
	       (unsigned long long)waits, (unsigned long long)late,
	       st == SB_WAIT_CLOSED ? "closed" : "dead"); /* dead is final: never seen if closed */
	sb_consumer_close(c);
	return 0;
}

int main(int argc, char **argv)
{
	struct sb_consumer *c;
	struct tu_tally t = { 0 };
	enum sb_wait_status st = SB_WAIT_READY;
	uint64_t waits = 0;

	if (argc < 3) {
		fprintf(stderr,
			"usage: %s SOCKET drain [all] | hold | wait | aux | advance | not-trying | "
			"follow [poll]\n",
			argv[0]);
		return 2;
	}
	uint32_t flags = argc > 3 && strcmp(argv[3], "all") == 0 ? SB_CONSUMER_ALL_VERSIONS : 0;
	t.multi = argc > 3 && strcmp(argv[3], "multi") == 0; /* seeds from tu_seed() */
	if (sb_consumer_connect(argv[1], flags, &c) != 0) {
		printf("error %s\n", sb_last_error());
		return 1;
	}
	if (strcmp(argv[2], "aux") == 0)
		return aux_mode(c);
	if (strcmp(argv[2], "follow") == 0)
		return follow_mode(c, argc > 3 && strcmp(argv[3], "poll") == 0);
	if (strcmp(argv[2], "advance") == 0 || strcmp(argv[2], "not-trying") == 0)
		return accessor_mode(c, strcmp(argv[2], "advance") == 0);
	if (strcmp(argv[2], "wait") == 0) {
		static const char *const names[] = { [SB_WAIT_READY] = "ready",
						     [SB_WAIT_TIMEOUT] = "timeout",
						     [SB_WAIT_CLOSED] = "closed",
						     [SB_WAIT_DEAD] = "dead",
						     [SB_WAIT_ARMED] = "armed" };
		struct sb_events ev;

		if (sb_consumer_drain(c, NULL, NULL, NULL) != 0 || sb_consumer_drain_events(c, &ev))
			return 1;
		sb_events_free(&ev);
		printf("attached\n");
		fflush(stdout);
		if (sb_consumer_wait(c, 20000, &st) != 0)
			return 1;
		printf("status=%s\n", names[st]);
		sb_consumer_close(c);
		return 0;
	}
	printf("attached\n");
	fflush(stdout);
	if (strcmp(argv[2], "hold") == 0) {
		for (;;) {
			sb_consumer_wait(c, -1, &st);
			if (st == SB_WAIT_CLOSED || st == SB_WAIT_DEAD)
				return 0;
			sb_consumer_drain(c, NULL, NULL, NULL);
		}
	}
	for (;;) {
		if (sb_consumer_wait(c, -1, &st) != 0)
			return 1;
		waits++;
		if (st != SB_WAIT_READY)
			break;
		if (tu_drain_to_end(c, tu_tally_entry, &t) != 0) {
			printf("error %s\n", sb_last_error());
			return 1;
		}
	}
	if (tu_drain_to_end(c, tu_tally_entry, &t) != 0) {
		printf("error %s\n", sb_last_error());
		return 1;
	}
	struct sb_drain_counts d;
	sb_consumer_totals(c, &d);
	printf("stores=%llu delivered=%llu superseded=%llu evicted=%llu lapped=%llu torn=%llu "
	       "seen=%llu bad=%llu waits=%llu state=%s\n",
	       (unsigned long long)d.stores, (unsigned long long)d.delivered,
	       (unsigned long long)d.superseded, (unsigned long long)d.evicted,
	       (unsigned long long)d.lapped, (unsigned long long)d.torn,
	       (unsigned long long)t.delivered, (unsigned long long)t.bad,
	       (unsigned long long)waits, st == SB_WAIT_CLOSED ? "closed" : "dead");
	sb_consumer_close(c);
	return 0;
}
