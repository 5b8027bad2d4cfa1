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

int sb_consumer_drain_aux(struct sb_consumer *c, sb_aux_fn fn, void *user,
			  struct sb_aux_counts *counts)
{
	struct sb_log_reader *r;
	struct sb_aux_counts d = { 0 };
	int ret = 0, step;

	if (!c)
		return sb__fail(-EINVAL, "consumer is NULL");
	r = &c->aux_rec;
	sb__chan_used(c, SB_CHAN_AUX);
	sb__reader_begin(r);

	while (ret == 0 && (step = sb__reader_next(r, &c->buf, NULL)) > 0) {
		const struct sb_rec *rec = (const struct sb_rec *)c->buf.p;

		if (step == SB_READER_BUSY) {
			/* Aux records are committed before W3: one below the head is corrupt. */
			ret = sb__fail(-EBADMSG,
				       "aux record at %llu is below the head but not committed",
				       (unsigned long long)r->pos);
			break;
		}
		struct sb_aux_item item;
		struct sb_aux_owned own;
		ret = sb__aux_parse(rec, &item, &own);
		if (ret)
			break;
		ret = sb__reader_pass(r, rec, &d.records, &d.lapped, &d.delivered);
		if (ret == 0 && fn)
			ret = fn(user, &item);
		sb__aux_owned_free(&own);
	}
	if (ret == 0 && step < 0)
		ret = step;
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
	*out = c->aux_rec.cursor;
	return 0;
}

int sb_consumer_seek_aux(struct sb_consumer *c, uint64_t aux_seq)
{
	if (!c)
		return sb__fail(-EINVAL, "consumer is NULL");
	int err = sb__reader_seek(&c->aux_rec, aux_seq);
	if (!err)
		memset(&c->aux_totals, 0, sizeof(c->aux_totals)); /* they count from here on */
	return err;
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
