/*
 * consumers/aux_log.c - the consumer's aux log (kernel-op replies,
 * cgroup.procs snapshots), drained with exact accounting.
 *
 * The aux log is a byte ring like the record log, read with the same
 * reader core (ring/log.h) but without fates: a record is delivered, or
 * lapped (its bytes were reused before we copied it). An aux record is
 * committed before the head moves past it, so there is none in flight to
 * wait for and none a crash can tear. Every record is parsed by
 * ring/format/aux_record.c, which trusts nothing in it.
 */
#include <errno.h>
#include <string.h>

#include <snapbridge/consumer.h>

#include "../ring/atomics.h"
#include "../ring/error.h"
#include "../ring/format/aux_record.h"
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
	*out = sb__log_newest_seq(&c->hot->aux_seq);
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
