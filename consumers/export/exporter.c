/*
 * consumers/export/exporter.c - follow one region and publish what it
 * drains to a JetStream stream, exactly once and in order.
 *
 * Messages live in one FIFO, in the order they were drained:
 *
 *   front                                                       back
 *   | ACKED | INFLIGHT | FAILED | ACKED | INFLIGHT | QUEUED | QUEUED |
 *     popped once       ^ at most `window` in flight (and bytes)
 *     at the front
 *
 * The main thread drains the region into QUEUED entries (only when the
 * window has room: a slow or absent server stops the draining, never the
 * coordinator, which laps us and is counted), publishes them
 * asynchronously, and pops acknowledged entries from the front. libnats
 * delivers acknowledgements on its own thread (on_ack): the FIFO is
 * shared with it under `lock`.
 *
 * Exactly once: each message carries Nats-Msg-Id = <region>:<seq of its
 * kind>, so the stream stores a resent message once (within its duplicate
 * window). In order: a failure (an error or a timeout instead of an ack,
 * a publish refused, a lost connection) sets `trouble`: nothing new is
 * published until every message in flight is answered and a connection
 * is up (a new one, never the library's reconnect of the old one); then
 * the failed ones go out again in FIFO order, before anything newer. A
 * connection stores a prefix of what was sent on it, so without
 * an earlier failure no later message can overtake. The one case this
 * cannot rule out (a failed message stored anew after a later one was
 * stored, which a stream leader change mid-window could cause) is
 * detected from the acks and counted as out_of_order. docs/ARCHITECTURE.md
 * has the argument and the resume rule.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "export.h"
#include "wire.h"

enum ent_state { E_QUEUED = 1, E_INFLIGHT, E_ACKED, E_FAILED };

/* The three sequences a summary reports on, each confirmed separately. */
enum group { G_REC, G_EV, G_AUX, G_COUNT, G_NONE = G_COUNT };

struct ent {
	natsMsg *msg; /* ours while QUEUED or FAILED; the library's while in flight */
	natsMsg *key; /* the message's address while in flight: acks are matched by it */
	enum sbx_kind kind;
	enum ent_state state;
	bool resend;	/* it failed once and went out again */
	bool acked_new; /* stored by this run: acknowledged, not as a duplicate */
	size_t bytes;
	uint64_t seq;		  /* the sequence of its kind (store, event, aux) */
	struct sbx_cursors at;	  /* the run's cursors once this message is stored */
	struct sbx_counts counts; /* ... and the accounting */
};

struct sbx_export {
	struct sbx_export_config cfg;
	char host[SBX_HOST_MAX + 1];
	char run[17];
	struct sbx_conn conn;
	struct sbx_origin origin;
	struct sbx_buf scratch;
	struct sb_consumer *c;
	bool attached;
	bool resumed;
	struct sbx_cursors resumed_at;

	pthread_mutex_t lock; /* guards everything down to "main thread only" */
	pthread_cond_t cond;  /* room in a full window, a failure, the last answer */
	struct ent *q;
	size_t cap, front, n; /* ring of cap entries, n used from front */
	size_t next;	      /* offset from front where a QUEUED entry may be */
	size_t n_inflight, n_queued, n_group[G_COUNT];
	uint64_t inflight_bytes;
	bool trouble; /* stop publishing until everything in flight is answered */
	uint64_t duplicates, late, out_of_order, reconnects;
	char fail_text[200];
	/* confirmed: the state after the last popped message of each group */
	struct sbx_cursors conf_at;
	struct sbx_counts conf;

	/* main thread only */
	bool lost;	/* the connection closed: reclaim, then dial a new one */
	bool reclaimed; /* what was in flight on the lost connection is ours again */
	uint64_t dial_failures;
	struct sbx_cursors live_at; /* after the last drain */
	struct sbx_counts live, carried;
	uint64_t published, resent;
	uint64_t summary_n, next_summary_ms, retry_at_ms, backoff_ms;
	uint64_t logged_late, logged_ooo, logged_reconnects;
	bool source_done;
	int fatal;
	natsMsg *built; /* what the drain callback built */
	int build_err;
};

static void say(struct sbx_export *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct sbx_export *x, const char *fmt, ...)
{
	char line[600];
	va_list ap;

	if (!x->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	x->cfg.log(x->cfg.log_user, line);
}

static enum group group_of(enum sbx_kind k)
{
	switch (k) {
	case SBX_SNAP:
		return G_REC;
	case SBX_EVENT:
		return G_EV;
	case SBX_KERNEL_OP:
	case SBX_CGROUP_PROCS:
		return G_AUX;
	default:
		return G_NONE;
	}
}

static struct ent *at(struct sbx_export *x, size_t i)
{
	return &x->q[(x->front + i) % x->cap];
}

/* Copy group g's cursor and counts from (sa, sc) into (da, dc). */
static void copy_group(enum group g, struct sbx_cursors *da, struct sbx_counts *dc,
		       const struct sbx_cursors *sa, const struct sbx_counts *sc)
{
	switch (g) {
	case G_REC:
		da->store_seq = sa->store_seq;
		dc->rec = sc->rec;
		break;
	case G_EV:
		da->event_seq = sa->event_seq;
		dc->events = sc->events;
		dc->events_truncated = sc->events_truncated;
		break;
	case G_AUX:
		da->aux_seq = sa->aux_seq;
		dc->aux = sc->aux;
		break;
	default:
		break;
	}
}

/* ---- acknowledgements (libnats's thread) ------------------------------------------------ */

/* The entry in flight whose message is m, or NULL. Called with the lock held. */
static struct ent *find_inflight(struct sbx_export *x, natsMsg *m)
{
	for (size_t i = 0; i < x->n; i++) {
		struct ent *e = at(x, i);

		if (e->state == E_INFLIGHT && e->key == m)
			return e;
	}
	return NULL;
}

/*
 * A resent message was stored anew: if a later message of its sequence
 * was stored already, the stream now holds them out of order.
 */
static void check_order(struct sbx_export *x, const struct ent *e)
{
	enum group g = group_of(e->kind);
	bool after = false;

	if (g == G_NONE)
		return;
	for (size_t i = 0; i < x->n; i++) {
		const struct ent *o = at(x, i);

		if (o == e) {
			after = true;
		} else if (after && group_of(o->kind) == g && o->acked_new) {
			x->out_of_order++;
			return;
		}
	}
}

static void on_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *user)
{
	struct sbx_export *x = user;

	(void)js;
	pthread_mutex_lock(&x->lock);
	struct ent *e = find_inflight(x, m);
	if (!e) {
		/* Reclaimed after a reconnect and resent: its old answer no longer counts. */
		pthread_mutex_unlock(&x->lock);
		natsMsg_Destroy(m);
		return;
	}
	/* Wake the main thread only when it may be waiting for this: a full window, a failure, the
	 * last answer. */
	bool was_full = x->n_inflight >= x->cfg.window || x->inflight_bytes >= x->cfg.window_bytes;
	e->key = NULL;
	x->n_inflight--;
	x->inflight_bytes -= e->bytes;
	if (pa) {
		e->state = E_ACKED;
		if (pa->Duplicate) {
			x->duplicates++;
			/* Never failed, yet already there: a killed run's publish landed after
			 * resume. */
			if (!e->resend)
				x->late++;
		} else {
			e->acked_new = true;
			if (e->resend)
				check_order(x, e);
		}
		natsMsg_Destroy(m);
	} else {
		e->state = E_FAILED;
		e->msg = m;
		x->trouble = true;
		snprintf(x->fail_text, sizeof(x->fail_text), "%s",
			 pae && pae->ErrText ? pae->ErrText
			 : pae		     ? natsStatus_GetText(pae->Err)
					     : "no answer");
	}
	if (!pa || was_full || x->n_inflight == 0)
		pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
}

/* ---- the FIFO (main thread; the lock guards against on_ack) ----------------------------- */

static int push(struct sbx_export *x, natsMsg *m, enum sbx_kind kind, uint64_t seq)
{
	pthread_mutex_lock(&x->lock);
	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 64;
		struct ent *q = calloc(cap, sizeof(*q));

		if (!q) {
			pthread_mutex_unlock(&x->lock);
			natsMsg_Destroy(m);
			return sbx__fail(-ENOMEM, "out of memory for the publish window");
		}
		for (size_t i = 0; i < x->n; i++)
			q[i] = *at(x, i);
		free(x->q);
		x->q = q;
		x->cap = cap;
		x->front = 0;
	}
	struct ent *e = at(x, x->n);
	*e = (struct ent){ .msg = m,
			   .kind = kind,
			   .state = E_QUEUED,
			   .seq = seq,
			   .at = x->live_at,
			   .counts = x->live };
	e->bytes = (size_t)natsMsg_GetDataLength(m) + 512; /* with its headers, roughly */
	x->n++;
	x->n_queued++;
	if (group_of(kind) != G_NONE)
		x->n_group[group_of(kind)]++;
	pthread_mutex_unlock(&x->lock);
	return 0;
}

/* Pop acknowledged entries from the front; each confirms its group's state. */
static void pop_acked(struct sbx_export *x)
{
	bool popped = false;

	pthread_mutex_lock(&x->lock);
	while (x->n && at(x, 0)->state == E_ACKED) {
		struct ent *e = at(x, 0);
		enum group g = group_of(e->kind);

		if (g != G_NONE) {
			copy_group(g, &x->conf_at, &x->conf, &e->at, &e->counts);
			x->n_group[g]--;
		}
		x->front = (x->front + 1) % x->cap;
		x->n--;
		if (x->next)
			x->next--;
		popped = true;
	}
	pthread_mutex_unlock(&x->lock);
	if (popped)
		x->backoff_ms = 0;
}

/*
 * Anything in flight? (Only then may js_PublishAsyncGetPendingList be
 * asked: libnats 3.4 crashes on a context that never published
 * asynchronously.)
 */
static bool in_flight(struct sbx_export *x)
{
	pthread_mutex_lock(&x->lock);
	bool any = x->n_inflight > 0;
	pthread_mutex_unlock(&x->lock);
	return x->conn.js && any;
}

/*
 * The connection closed: take back what was in flight on it (its acks
 * will never come), wait for answers already being delivered, then dial
 * a new connection, backing off from 100 ms to 2 s. Nothing the old one
 * had buffered is ever sent: the new connection starts empty, and the
 * failed messages go out again in order (requeue_failed).
 */
static void redial(struct sbx_export *x)
{
	/* Polled, not told: a closed callback could outlive the exporter. */
	if (!x->lost && x->conn.nc && !natsConnection_IsClosed(x->conn.nc))
		return;
	x->lost = true;
	if (!x->reclaimed) {
		natsMsgList list = { 0 };

		if (in_flight(x) && js_PublishAsyncGetPendingList(&list, x->conn.js) == NATS_OK) {
			pthread_mutex_lock(&x->lock);
			for (int i = 0; i < list.Count; i++) {
				struct ent *e = find_inflight(x, list.Msgs[i]);

				if (!e)
					continue;
				e->key = NULL;
				e->state = E_FAILED;
				e->msg = list.Msgs[i];
				list.Msgs[i] = NULL;
				x->n_inflight--;
				x->inflight_bytes -= e->bytes;
			}
			pthread_mutex_unlock(&x->lock);
			natsMsgList_Destroy(&list);
		}
		pthread_mutex_lock(&x->lock);
		x->trouble = true;
		snprintf(x->fail_text, sizeof(x->fail_text), "connection lost");
		pthread_mutex_unlock(&x->lock);
		x->reclaimed = true;
	}
	pthread_mutex_lock(&x->lock);
	bool answering = x->n_inflight > 0; /* an ack handler already on its way */
	pthread_mutex_unlock(&x->lock);
	uint64_t now = sbx__now_ms();
	if (answering || now < x->retry_at_ms)
		return;
	if (sbx_conn_redial(&x->conn)) {
		x->dial_failures++;
		x->backoff_ms =
		    x->backoff_ms ? (x->backoff_ms * 2 < 2000 ? x->backoff_ms * 2 : 2000) : 100;
		x->retry_at_ms = now + x->backoff_ms + (uint64_t)(rand() % 100);
		if (x->dial_failures == 1 || x->dial_failures % 30 == 0)
			say(x, "%s; retrying", sbx_last_error());
		return;
	}
	x->lost = false;
	pthread_mutex_lock(&x->lock);
	x->reconnects++;
	pthread_mutex_unlock(&x->lock);
	x->reclaimed = false;
	x->dial_failures = 0;
	x->backoff_ms = 0;
	x->retry_at_ms = 0;
	x->origin.max_payload = natsConnection_GetMaxPayload(x->conn.nc);
}

/*
 * Once everything in flight is answered and the connection is up, put
 * the failed messages back in the queue, in FIFO order, ahead of
 * anything newer. Repeated failures back off from 100 ms to 2 s.
 */
static void requeue_failed(struct sbx_export *x)
{
	uint64_t now = sbx__now_ms();

	if (now < x->retry_at_ms || !sbx_conn_up(&x->conn))
		return;
	pthread_mutex_lock(&x->lock);
	if (x->trouble && x->n_inflight == 0) {
		size_t n = 0;

		for (size_t i = 0; i < x->n; i++) {
			struct ent *e = at(x, i);

			if (e->state == E_FAILED) {
				e->state = E_QUEUED;
				e->resend = true;
				x->n_queued++;
				n++;
			}
		}
		x->trouble = false;
		x->next = 0;
		if (n) {
			char why[200];

			snprintf(why, sizeof(why), "%s", x->fail_text);
			pthread_mutex_unlock(&x->lock);
			say(x, "resending %zu message%s in order (%s)", n, n == 1 ? "" : "s", why);
			x->backoff_ms = x->backoff_ms
					    ? (x->backoff_ms * 2 < 2000 ? x->backoff_ms * 2 : 2000)
					    : 100;
			x->retry_at_ms = now + x->backoff_ms;
			return;
		}
	}
	pthread_mutex_unlock(&x->lock);
}

static bool has_room(struct sbx_export *x)
{
	pthread_mutex_lock(&x->lock);
	bool room = !x->trouble && x->n_queued == 0 && x->n_inflight < x->cfg.window &&
		    x->inflight_bytes < x->cfg.window_bytes;
	pthread_mutex_unlock(&x->lock);
	return room;
}

/* Publish QUEUED entries in FIFO order while the window has room and nothing failed. */
static void publish_queued(struct sbx_export *x)
{
	for (;;) {
		pthread_mutex_lock(&x->lock);
		if (x->trouble || x->n_queued == 0 || x->n_inflight >= x->cfg.window ||
		    x->inflight_bytes >= x->cfg.window_bytes) {
			pthread_mutex_unlock(&x->lock);
			return;
		}
		struct ent *e = NULL;
		for (; x->next < x->n; x->next++)
			if (at(x, x->next)->state == E_QUEUED) {
				e = at(x, x->next);
				break;
			}
		if (!e) {
			pthread_mutex_unlock(&x->lock);
			return;
		}
		natsMsg *m = e->msg;
		bool resend = e->resend;
		e->msg = NULL;
		e->key = m;
		e->state = E_INFLIGHT;
		x->n_queued--;
		x->n_inflight++;
		x->inflight_bytes += e->bytes;
		pthread_mutex_unlock(&x->lock);

		jsPubOptions po;
		jsPubOptions_Init(&po);
		po.MaxWait = x->cfg.ack_wait_ms;
		natsMsg *mine = m;
		natsStatus s = js_PublishMsgAsync(x->conn.js, &mine, &po);
		if (s == NATS_OK) {
			if (resend)
				x->resent++;
			else
				x->published++;
			continue;
		}
		/* Refused here (disconnected, reconnecting): the message is still ours. */
		pthread_mutex_lock(&x->lock);
		if (e->state == E_INFLIGHT && e->key == m) {
			e->key = NULL;
			e->state = E_FAILED;
			e->msg = mine ? mine : NULL;
			x->n_inflight--;
			x->inflight_bytes -= e->bytes;
		}
		x->trouble = true;
		snprintf(x->fail_text, sizeof(x->fail_text), "%s", natsStatus_GetText(s));
		pthread_mutex_unlock(&x->lock);
		if (s == NATS_MAX_PAYLOAD)
			x->fatal = sbx__fail(-E2BIG,
					     "a %s message of %d bytes is over the server's "
					     "max_payload (raise max_payload in nats-server)",
					     sbx__kind_name(e->kind), natsMsg_GetDataLength(m));
		return;
	}
}

/* ---- draining the region into the FIFO ------------------------------------------------- */

static int on_entry(void *user, const struct sb_entry *e)
{
	struct sbx_export *x = user;

	x->build_err = sbx_snap_msg(&x->origin, e, &x->built);
	return 1; /* one at a time: the totals after the drain are this record's accounting */
}

static int on_aux(void *user, const struct sb_aux_item *it)
{
	struct sbx_export *x = user;

	x->build_err = sbx_aux_msg(&x->origin, it, &x->built);
	return 1;
}

static void add_rec(struct sb_drain_counts *to, const struct sb_drain_counts *a,
		    const struct sb_drain_counts *b)
{
	to->stores = a->stores + b->stores;
	to->delivered = a->delivered + b->delivered;
	to->superseded = a->superseded + b->superseded;
	to->evicted = a->evicted + b->evicted;
	to->lapped = a->lapped + b->lapped;
	to->torn = a->torn + b->torn;
}

static int drain_failed(struct sbx_export *x, const char *what, int r)
{
	return x->fatal = sbx__fail(r < 0 ? r : -EBADMSG, "cannot drain the region's %s: %s", what,
				    sb_last_error());
}

/* Enqueue what one stop-after-one drain built; its counts are the totals after it. */
static int take_built(struct sbx_export *x, enum sbx_kind kind, uint64_t seq)
{
	natsMsg *m = x->built;
	int err;

	x->built = NULL;
	if (x->build_err) {
		natsMsg_Destroy(m);
		return x->fatal = x->build_err;
	}
	err = sbx_set_counts(m, kind, &x->live);
	if (!err)
		err = push(x, m, kind, seq);
	else
		natsMsg_Destroy(m);
	return err ? (x->fatal = err) : 0;
}

/* Records, one at a time, while the window has room. True when anything moved. */
static bool drain_records(struct sbx_export *x)
{
	bool moved = false;

	while (!x->fatal && has_room(x)) {
		struct sb_drain_counts t;
		uint64_t before = x->live_at.store_seq, cursor;
		int r = sb_consumer_drain(x->c, on_entry, x, NULL);

		if (r < 0 || r > 1) {
			natsMsg_Destroy(x->built);
			x->built = NULL;
			drain_failed(x, "record log", r);
			break;
		}
		sb_consumer_totals(x->c, &t);
		sb_consumer_cursor(x->c, &cursor);
		add_rec(&x->live.rec, &x->carried.rec, &t);
		x->live_at.store_seq = cursor;
		if (x->built) {
			if (take_built(x, SBX_SNAP, cursor))
				break;
			publish_queued(x);
			moved = true;
		} else {
			moved |= cursor != before;
			break;
		}
	}
	return moved;
}

static bool drain_aux(struct sbx_export *x)
{
	bool moved = false;

	while (!x->fatal && has_room(x)) {
		struct sb_aux_counts t;
		uint64_t before = x->live.aux.records, cursor;
		int r = sb_consumer_drain_aux(x->c, on_aux, x, NULL);

		if (r < 0 || r > 1) {
			natsMsg_Destroy(x->built);
			x->built = NULL;
			drain_failed(x, "aux log", r);
			break;
		}
		sb_consumer_aux_totals(x->c, &t);
		sb_consumer_aux_cursor(x->c, &cursor);
		x->live.aux.records = x->carried.aux.records + t.records;
		x->live.aux.delivered = x->carried.aux.delivered + t.delivered;
		x->live.aux.lapped = x->carried.aux.lapped + t.lapped;
		x->live_at.aux_seq = cursor;
		if (x->built) {
			enum sbx_kind k = strstr(natsMsg_GetSubject(x->built), ".kernel_op")
					      ? SBX_KERNEL_OP
					      : SBX_CGROUP_PROCS;
			if (take_built(x, k, cursor))
				break;
			publish_queued(x);
			moved = true;
		} else {
			moved |= x->live.aux.records != before;
			break;
		}
	}
	return moved;
}

/* Events come in batches; the batch waits in the FIFO for room. */
static bool drain_events(struct sbx_export *x)
{
	struct sb_events evs;
	uint64_t head;
	bool moved = false;

	if (x->fatal || !has_room(x))
		return false;
	int r = sb_consumer_drain_events(x->c, &evs);
	if (r) {
		drain_failed(x, "event ring", r);
		return false;
	}
	sb_consumer_event_cursor(x->c, &head);
	for (size_t i = 0; i < evs.count && !x->fatal; i++) {
		const struct sb_event *ev = &evs.items[i];
		natsMsg *m = NULL;

		if (ev->kind == SB_EVENT_LOG_TRUNCATED) {
			x->live.events_truncated += ev->count;
			x->live_at.event_seq = head;
		} else {
			x->live.events++;
			x->live_at.event_seq = ev->seq;
		}
		x->build_err = sbx_event_msg(&x->origin, ev, head, &m);
		x->built = m;
		take_built(x, SBX_EVENT, x->live_at.event_seq);
		moved = true;
	}
	x->live_at.event_seq = head;
	sb_events_free(&evs);
	publish_queued(x);
	return moved;
}

/* ---- summaries --------------------------------------------------------------------------- */

void sbx_export_summary(struct sbx_export *x, struct sbx_summary *s)
{
	enum sb_coord_state cs = SB_COORD_ALIVE;

	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&x->lock);
	/* A group with nothing unconfirmed stands where its last drain left it. */
	for (int g = 0; g < G_COUNT; g++) {
		if (x->n_group[g])
			copy_group((enum group)g, &s->at, &s->counts, &x->conf_at, &x->conf);
		else
			copy_group((enum group)g, &s->at, &s->counts, &x->live_at, &x->live);
	}
	s->duplicates = x->duplicates;
	s->late = x->late;
	s->out_of_order = x->out_of_order;
	s->reconnects = x->reconnects;
	pthread_mutex_unlock(&x->lock);
	if (x->c) {
		sb_consumer_store_count(x->c, &s->coordinator_stores);
		sb_consumer_coordinator(x->c, &cs);
	}
	s->coordinator = cs;
	s->published = x->published;
	s->resent = x->resent;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	s->time_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int publish_summary(struct sbx_export *x, bool final)
{
	struct sbx_summary s;
	natsMsg *m = NULL;

	sbx_export_summary(x, &s);
	s.final = final;
	int err = sbx_summary_msg(&x->origin, &s, x->run, ++x->summary_n, &m);
	if (!err)
		err = push(x, m, SBX_SUMMARY, x->summary_n);
	if (!err)
		publish_queued(x);
	return err;
}

/* Tell a person what the acks said since the last round. */
static void report_news(struct sbx_export *x)
{
	pthread_mutex_lock(&x->lock);
	uint64_t late = x->late, ooo = x->out_of_order, rc = x->reconnects;
	pthread_mutex_unlock(&x->lock);
	if (rc != x->logged_reconnects)
		say(x, "reconnected to NATS (%" PRIu64 " reconnect%s so far)", rc,
		    rc == 1 ? "" : "s");
	if (late != x->logged_late)
		say(x,
		    "%" PRIu64 " message%s already in the stream when first sent: a killed "
		    "exporter's publishes landed after the resume point was read",
		    late - x->logged_late, late - x->logged_late == 1 ? " was" : "s were");
	if (ooo != x->logged_ooo)
		say(x,
		    "%" PRIu64 " resent message%s stored after a later one: the stream holds "
		    "them out of store order",
		    ooo - x->logged_ooo, ooo - x->logged_ooo == 1 ? " was" : "s were");
	x->logged_reconnects = rc;
	x->logged_late = late;
	x->logged_ooo = ooo;
}

/* ---- the rounds -------------------------------------------------------------------------- */

/* Acks in, failures handled, queued messages out. */
static void service(struct sbx_export *x)
{
	redial(x);
	pop_acked(x);
	requeue_failed(x);
	publish_queued(x);
	report_news(x);
}

static void wait_acks(struct sbx_export *x, int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	/* A resend could go out now (not while the connection is down or backing off). */
	bool can_resend = sbx_conn_up(&x->conn) && sbx__now_ms() >= x->retry_at_ms;
	pthread_mutex_lock(&x->lock);
	/* Anything to do already? Failed messages to resend, or acks to pop. */
	bool ready = (x->trouble && x->n_inflight == 0 && !x->lost && can_resend) ||
		     (x->n && at(x, 0)->state == E_ACKED);
	if (!ready)
		pthread_cond_timedwait(&x->cond, &x->lock, &ts);
	pthread_mutex_unlock(&x->lock);
}

int sbx_export_pump(struct sbx_export *x, int timeout_ms, bool *done)
{
	bool moved = false;

	*done = false;
	if (!x->attached)
		return sbx__fail(-EINVAL, "sbx_export_pump before sbx_export_attach");
	if (x->fatal)
		return x->fatal;
	service(x);
	if (!x->source_done && has_room(x)) {
		enum sb_coord_state cs = SB_COORD_ALIVE;

		/* Liveness first: once it says gone, these drains read the rest. */
		sb_consumer_coordinator(x->c, &cs);
		moved |= drain_events(x);
		moved |= drain_aux(x);
		moved |= drain_records(x);
		if (!moved && !x->fatal && (x->cfg.once || cs != SB_COORD_ALIVE))
			x->source_done = true;
	}
	uint64_t now = sbx__now_ms();
	if (!x->fatal && now >= x->next_summary_ms) {
		x->next_summary_ms = now + x->cfg.summary_ms;
		int err = publish_summary(x, false);
		if (err)
			x->fatal = err;
	}
	if (x->fatal)
		return x->fatal;
	*done = x->source_done;
	if (moved || x->source_done)
		return 0;
	if (has_room(x)) {
		enum sb_wait_status st;

		sb_consumer_wait(x->c, timeout_ms, &st);
	} else {
		wait_acks(x, timeout_ms);
	}
	return 0;
}

int sbx_export_finish(struct sbx_export *x, int timeout_ms)
{
	uint64_t deadline = sbx__now_ms() + (uint64_t)timeout_ms;
	bool final_sent = false;

	if (!x->attached)
		return sbx__fail(-EINVAL, "sbx_export_finish before sbx_export_attach");
	for (;;) {
		if (x->fatal)
			return x->fatal;
		service(x);
		pthread_mutex_lock(&x->lock);
		size_t n = x->n;
		bool only_summaries = true;
		for (size_t i = 0; i < x->n; i++)
			if (at(x, i)->kind != SBX_SUMMARY)
				only_summaries = false;
		pthread_mutex_unlock(&x->lock);
		if (n == 0 && final_sent)
			return 0;
		/* Everything that counts is confirmed: the final summary says so. */
		if (!final_sent && only_summaries) {
			int err = publish_summary(x, true);
			if (err)
				return err;
			final_sent = true;
			continue;
		}
		if (sbx__now_ms() >= deadline)
			return sbx__fail(-ETIMEDOUT,
					 "%zu message%s still unconfirmed by the stream (%s); a "
					 "restart resumes after what was stored",
					 n, n == 1 ? "" : "s",
					 x->fail_text[0] ? x->fail_text : "no answer yet");
		wait_acks(x, 100);
	}
}

/* ---- starting -------------------------------------------------------------------------- */

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int sbx_export_open(const struct sbx_export_config *cfg, struct sbx_export **out)
{
	struct sbx_export *x;
	uint64_t nonce = 0;
	int err;

	*out = NULL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return sbx__fail(-ENOMEM, "out of memory");
	x->cfg = *cfg;
	if (!x->cfg.window)
		x->cfg.window = SBX_DEFAULT_WINDOW;
	if (!x->cfg.window_bytes)
		x->cfg.window_bytes = SBX_DEFAULT_WINDOW_BYTES;
	if (!x->cfg.summary_ms)
		x->cfg.summary_ms = SBX_DEFAULT_SUMMARY_MS;
	if (!x->cfg.ack_wait_ms)
		x->cfg.ack_wait_ms = SBX_DEFAULT_ACK_WAIT_MS;
	if (cfg->host) {
		snprintf(x->host, sizeof(x->host), "%s", cfg->host);
	} else if (gethostname(x->host, sizeof(x->host)) != 0) {
		free(x);
		return sbx__fail(-errno, "cannot read the host name: give --host");
	}
	x->host[SBX_HOST_MAX] = '\0';
	err = sbx_host_check(x->host);
	if (err) {
		free(x);
		return err;
	}
	if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
		nonce = (uint64_t)sbx__now_ms() ^ (uint64_t)getpid() << 32;
	snprintf(x->run, sizeof(x->run), "%016" PRIx64, nonce);
	pthread_mutex_init(&x->lock, NULL);
	pthread_cond_init(&x->cond, NULL);

	struct sbx_conn_config cc = {
		.target = &x->cfg.target,
		.host = x->host,
		.create = true,
		.replicas = x->cfg.replicas,
		.connect_ms = x->cfg.connect_ms,
		/* Our window bounds what is in flight; the library must never stall. */
		.max_pending = (int64_t)x->cfg.window + 64,
		.ack_fn = on_ack,
		.ack_user = x,
		.own_reconnect = true,
	};
	err = sbx_conn_open(&cc, &x->conn);
	if (err) {
		pthread_mutex_destroy(&x->lock);
		pthread_cond_destroy(&x->cond);
		free(x);
		return err;
	}
	x->origin.prefix = x->conn.prefix;
	x->origin.host = x->host;
	x->origin.scratch = &x->scratch;
	x->origin.max_payload = natsConnection_GetMaxPayload(x->conn.nc);
	*out = x;
	return 0;
}

/* The last message of subject for this host, if it is of region id: 1 found, 0 not, <0. */
static int last_of(struct sbx_export *x, const char *what, struct sbx_msg *m)
{
	char subject[SBX_PREFIX_MAX + 3 * SBX_HOST_MAX + 32];

	sbx__host_subject(x->conn.prefix, x->host, subject, sizeof(subject) - 16);
	strcat(subject, what);
	int r = sbx_conn_last(&x->conn, subject, m);
	if (r < 0)
		return r;
	if (r == 1)
		return 0;
	if (memcmp(m->region, x->origin.region, SB_REGION_ID_BYTES) != 0) {
		sbx_msg_free(m);
		return 0; /* an earlier region of this host */
	}
	return 1;
}

/* Publish the fence and wait for it: what the stream had queued is stored after this. */
static int fence(struct sbx_export *x)
{
	natsMsg *m = NULL;
	jsPubAck *pa = NULL;
	jsErrCode ec = 0;
	jsPubOptions po;
	int err = sbx_resume_msg(&x->origin, x->run, &m);

	if (err)
		return err;
	jsPubOptions_Init(&po);
	po.MaxWait = x->cfg.ack_wait_ms;
	natsStatus s = js_PublishMsg(&pa, x->conn.js, m, &po, &ec);
	natsMsg_Destroy(m);
	jsPubAck_Destroy(pa);
	if (s != NATS_OK)
		return sbx__fail(-EIO, "cannot publish to stream %s: %s", x->conn.stream,
				 nats_GetLastError(NULL) ? nats_GetLastError(NULL)
							 : natsStatus_GetText(s));
	return 0;
}

int sbx_export_attach(struct sbx_export *x, struct sb_consumer *c)
{
	struct sbx_msg m;
	char region[SBX_REGION_TEXT];
	int r;

	if (x->attached)
		return sbx__fail(-EINVAL, "this exporter is attached already");
	x->c = c;
	sb_consumer_region_id(c, x->origin.region);
	sbx_region_text(x->origin.region, region);
	if (x->cfg.settle_ms)
		sleep_ms(x->cfg.settle_ms);
	r = fence(x);
	if (r)
		return r;

	/* Each sequence resumes after the later of its own last message and the last summary. */
	struct sbx_cursors from = { 0 };
	struct sbx_counts carried = { 0 };
	struct sbx_summary sum = { 0 };
	r = last_of(x, "summary", &m);
	if (r < 0)
		return r;
	if (r) {
		sum = m.summary;
		sbx_msg_free(&m);
		x->resumed = true;
		copy_group(G_REC, &from, &carried, &sum.at, &sum.counts);
		copy_group(G_EV, &from, &carried, &sum.at, &sum.counts);
		copy_group(G_AUX, &from, &carried, &sum.at, &sum.counts);
	}
	static const char *const whats[] = { "snap.>", "event", "kernel_op", "cgroup_procs" };
	for (int i = 0; i < 4; i++) {
		r = last_of(x, whats[i], &m);
		if (r < 0)
			return r;
		if (!r)
			continue;
		enum group g = group_of(m.kind);
		uint64_t mine = g == G_REC  ? from.store_seq
				: g == G_EV ? from.event_seq
					    : from.aux_seq;
		if (m.seq > mine)
			copy_group(g, &from, &carried, &(struct sbx_cursors){ m.seq, m.seq, m.seq },
				   &m.counts);
		x->resumed = true;
		sbx_msg_free(&m);
	}

	if (x->resumed) {
		if ((r = sb_consumer_seek(c, from.store_seq)) ||
		    (r = sb_consumer_seek_events(c, from.event_seq)) ||
		    (r = sb_consumer_seek_aux(c, from.aux_seq)))
			return sbx__fail(-EBADMSG,
					 "stream %s says region %s was exported further than it "
					 "goes: %s",
					 x->conn.stream, region, sb_last_error());
		say(x,
		    "exporting region %s as host %s to stream %s, resuming after store %" PRIu64
		    ", event %" PRIu64 ", aux record %" PRIu64,
		    region, x->host, x->conn.stream, from.store_seq, from.event_seq, from.aux_seq);
	} else {
		say(x, "exporting region %s as host %s to stream %s, from its oldest record",
		    region, x->host, x->conn.stream);
	}
	x->resumed_at = from;
	x->carried = carried;
	x->live = carried;
	x->live_at = from;
	x->conf = carried;
	x->conf_at = from;
	x->attached = true;
	x->next_summary_ms = 0; /* one right away: where this run starts */
	return 0;
}

const char *sbx_export_host(const struct sbx_export *x)
{
	return x->host;
}

void sbx_export_region(const struct sbx_export *x, uint8_t id[SB_REGION_ID_BYTES])
{
	memcpy(id, x->origin.region, SB_REGION_ID_BYTES);
}

void sbx_export_resumed(const struct sbx_export *x, struct sbx_cursors *at_out, bool *resumed)
{
	*at_out = x->resumed_at;
	*resumed = x->resumed;
}

/*
 * Nothing of libnats may call into x once it is freed: take back what is
 * in flight (its acks and timeouts are dropped), and let an ack already
 * on its way finish first.
 */
static void quiesce(struct sbx_export *x)
{
	natsMsgList list = { 0 };

	if (in_flight(x) && js_PublishAsyncGetPendingList(&list, x->conn.js) == NATS_OK) {
		pthread_mutex_lock(&x->lock);
		for (int i = 0; i < list.Count; i++) {
			struct ent *e = find_inflight(x, list.Msgs[i]);

			if (e) {
				e->key = NULL;
				e->state = E_FAILED;
				e->msg = list.Msgs[i];
				list.Msgs[i] = NULL;
				x->n_inflight--;
			}
		}
		pthread_mutex_unlock(&x->lock);
		natsMsgList_Destroy(&list);
	}
	for (int waited = 0; waited < 2000; waited += 10) {
		pthread_mutex_lock(&x->lock);
		size_t n = x->n_inflight;
		pthread_mutex_unlock(&x->lock);
		if (!n)
			break;
		usleep(10000);
	}
}

void sbx_export_close(struct sbx_export *x)
{
	if (!x)
		return;
	quiesce(x);
	sbx_conn_close(&x->conn);
	for (size_t i = 0; i < x->n; i++)
		natsMsg_Destroy(at(x, i)->msg);
	natsMsg_Destroy(x->built);
	free(x->scratch.p);
	free(x->q);
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->cond);
	free(x);
}
