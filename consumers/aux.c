/*
 * consumers/aux.c - the consumer's view of the bridge's side channels:
 * the aux log (kernel-op replies, cgroup.procs snapshots) drained with
 * exact accounting, the watch count, and the accessor worker's state and
 * waits.
 *
 * The aux log is a byte ring like the record log (ring/log.h), so the
 * drain is sb_consumer_drain()'s walk (sb__walk_next) without fates: a
 * record is delivered, or lapped (its bytes were reused before we copied
 * them). An aux record is committed before the head moves past it, so
 * there is none in flight to wait for and none a crash can tear. Every record is parsed by
 * ring/auxrec.c, which trusts nothing in it.
 */
#include <errno.h>
#include <string.h>

#include <snapbridge/consumer.h>

#include "../ring/accessor.h"
#include "../ring/atomics.h"
#include "../ring/error.h"
#include "../ring/kop.h"
#include "../ring/log.h"
#include "consumer_internal.h"

/* Only now, with the record validated, do the cursor and the counts move. */
static void aux_account(struct sb_consumer *c, const struct sb_rec *rec, uint64_t gap,
			uint64_t *outcome, struct sb_aux_counts *d)
{
	d->lapped += gap;
	d->records += gap + 1;
	(*outcome)++;
	c->aux_cursor = rec->seq;
	c->aux_gap_ok = false;
	c->aux_seeking = false;
	c->aux_pos += rec->len;
}

int sb_consumer_drain_aux(struct sb_consumer *c, sb_aux_fn fn, void *user,
			  struct sb_aux_counts *counts)
{
	struct sb_aux_counts d = { 0 };
	struct sb_walk w;
	int ret = 0, step;

	if (!c)
		return sb__fail(-EINVAL, "consumer is NULL");
	sb__chan_used(c, SB_CHAN_AUX);
	sb__walk_begin(&w, &c->aux, &c->aux_pos, &c->aux_gap_ok, "aux");

	while (ret == 0 && (step = sb__walk_next(&w, &c->buf, NULL)) > 0) {
		const struct sb_rec *rec = (const struct sb_rec *)c->buf.p;
		uint64_t gap;

		if (step == SB_WALK_BUSY) {
			/* Aux records are committed before W3: one below the head is corrupt. */
			ret = sb__fail(-EBADMSG,
				       "aux record at %llu is below the head but not committed",
				       (unsigned long long)c->aux_pos);
			break;
		}
		if (c->aux_seeking && rec->seq <= c->aux_cursor) {
			c->aux_pos += rec->len; /* accounted for before sb_consumer_seek_aux */
			continue;
		}
		ret = sb__walk_gap(&w, c->aux_cursor, rec->seq, &gap);
		if (ret)
			break;
		struct sb_aux_item item;
		struct sb_aux_owned own;
		ret = sb__aux_parse(rec, &item, &own);
		if (ret)
			break;
		aux_account(c, rec, gap, &d.delivered, &d);
		if (fn)
			ret = fn(user, &item);
		sb__aux_owned_free(&own);
	}
	if (ret == 0 && step < 0)
		ret = step;
	c->aux_more = ret == 0 && c->aux_pos != w.head;
	c->aux_totals.records += d.records;
	c->aux_totals.delivered += d.delivered;
	c->aux_totals.lapped += d.lapped;
	sb__consumer_touch(c);
	if (counts)
		*counts = d;
	return ret;
}

int sb_consumer_aux_totals(const struct sb_consumer *c, struct sb_aux_counts *out)
{
	if (!c || !out)
		return sb__fail(-EINVAL, "sb_consumer_aux_totals: NULL argument");
	*out = c->aux_totals;
	return 0;
}

int sb_consumer_aux_count(const struct sb_consumer *c, uint64_t *out)
{
	if (!c || !out)
		return sb__fail(-EINVAL, "sb_consumer_aux_count: NULL argument");
	*out = sb_load_acquire(&c->hot->aux_seq); /* pairs with the store in aux_append */
	return 0;
}

int sb_consumer_aux_cursor(const struct sb_consumer *c, uint64_t *out)
{
	if (!c || !out)
		return sb__fail(-EINVAL, "sb_consumer_aux_cursor: NULL argument");
	*out = c->aux_cursor;
	return 0;
}

int sb_consumer_seek_aux(struct sb_consumer *c, uint64_t aux_seq)
{
	if (!c)
		return sb__fail(-EINVAL, "consumer is NULL");
	uint64_t newest = sb_load_acquire(&c->hot->aux_seq); /* as sb_consumer_aux_count */
	if (aux_seq > newest)
		return sb__fail(-ERANGE,
				"cannot resume after aux record %llu: the region's newest is %llu",
				(unsigned long long)aux_seq, (unsigned long long)newest);
	c->aux_pos = sb_load_acquire(&c->hot->aux_tail); /* pairs with W1 */
	c->aux_cursor = aux_seq;
	c->aux_gap_ok = true;
	c->aux_seeking = true;
	memset(&c->aux_totals, 0, sizeof(c->aux_totals)); /* they count from here on */
	return 0;
}

int sb_consumer_watch_count(const struct sb_consumer *c, uint32_t *out)
{
	if (!c || !out)
		return sb__fail(-EINVAL, "sb_consumer_watch_count: NULL argument");
	uint64_t n = sb_load_relaxed(&c->hot->watch_count);
	/* A hostile region could claim more than the cap it published. */
	if (n > c->hdr.max_watch)
		return sb__fail(-EBADMSG, "the region claims %llu watches over its cap of %u",
				(unsigned long long)n, c->hdr.max_watch);
	*out = (uint32_t)n;
	return 0;
}

int sb_consumer_accessor(const struct sb_consumer *c, bool *installed, uint64_t *seqno,
			 enum sb_worker_state *state)
{
	if (!c || !installed || !seqno || !state)
		return sb__fail(-EINVAL, "sb_consumer_accessor: NULL argument");
	/* pairs with the release store of installed in sb__accessor_install */
	*installed = sb_load_acquire(&c->hot->accessor_installed) != 0;
	uint32_t st = sb_load_acquire(&c->hot->accessor_state); /* pairs with A1 */
	*seqno = sb_load_acquire(&c->hot->accessor_seqno);	/* pairs with A1 */
	if (st > SB_WORKER_FAILED_PERMANENTLY)
		return sb__fail(-EBADMSG, "the region holds accessor worker state %u", st);
	*state = (enum sb_worker_state)st;
	return 0;
}

int sb_consumer_wait_worker_not_trying(struct sb_consumer *c, uint64_t deadline_ns,
				       const char *op_label)
{
	struct sb_accessor_sleeper z;

	if (!c)
		return sb__fail(-EINVAL, "consumer is NULL");
	sb__consumer_accessor_sleeper(c, &z);
	return sb__accessor_wait_not_trying(c->hot, deadline_ns, op_label, &z);
}

int sb_consumer_wait_publish_advance(struct sb_consumer *c, uint64_t seqno_before,
				     uint64_t deadline_ns, const char *op_label, uint64_t *seqno)
{
	struct sb_accessor_sleeper z;

	if (!c)
		return sb__fail(-EINVAL, "consumer is NULL");
	sb__consumer_accessor_sleeper(c, &z);
	return sb__accessor_wait_advance(c->hot, seqno_before, deadline_ns, op_label, &z, seqno);
}
