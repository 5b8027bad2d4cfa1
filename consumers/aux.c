/*
 * consumers/aux.c - the consumer's view of the bridge's side channels:
 * the aux log (kernel-op replies, cgroup.procs snapshots) drained with
 * exact accounting, the watch count, and the accessor worker's state and
 * waits.
 *
 * The aux log is a byte ring like the record log (ring/log.h), so the
 * drain is sb_consumer_drain()'s walk without fates: a record is
 * delivered, lapped (its bytes were reused before we copied them) or torn
 * (the writer died inside it). Every record is parsed by ring/auxrec.c,
 * which trusts nothing in it.
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

/* Most lap restarts one aux drain makes before returning what it has. */
#define SB_AUX_MAX_LAPS 64

/* Only now, with the record validated, do the cursor and the counts move. */
static void aux_account(struct sb_consumer *c, const struct sb_rec *rec, uint64_t gap,
			uint64_t *outcome, struct sb_aux_counts *d)
{
	d->lapped += gap;
	d->records += gap + 1;
	(*outcome)++;
	c->aux_cursor = rec->seq;
	c->aux_gap_ok = false;
	c->aux_pos += rec->len;
}

int sb_consumer_drain_aux(struct sb_consumer *c, sb_aux_fn fn, void *user,
			  struct sb_aux_counts *counts)
{
	struct sb_aux_counts d = { 0 };
	unsigned laps = 0;
	bool busy = false;
	int ret = 0;

	if (!c)
		return sb__fail(-EINVAL, "consumer is NULL");
	sb__chan_mark(c, SB_CHAN_AUX, sb_load_acquire(&c->hot->wake_gen)); /* pairs with N1 */
	uint64_t head = sb_load_acquire(&c->hot->aux_head);		   /* R1: pairs with W3 */
	uint64_t budget = c->aux.size / SB_REC_ALIGN + 1; /* a hostile head: one ring per call */

	while (c->aux_pos != head && ret == 0 && budget > 0) {
		int r = (head - c->aux_pos > c->aux.size)
			    ? SB_READ_LAPPED
			    : sb__log_copy(&c->aux, c->aux_pos, head, &c->buf, NULL);
		if (r < 0) {
			ret = r;
			break;
		}
		if (r == SB_READ_LAPPED) {
			if (++laps > SB_AUX_MAX_LAPS)
				break;
			c->aux_pos = sb_load_acquire(&c->hot->aux_tail); /* pairs with W1 */
			head = sb_load_acquire(&c->hot->aux_head); /* R1 again, after the tail */
			c->aux_gap_ok = true;
			continue;
		}
		budget--;
		const struct sb_rec *rec = (const struct sb_rec *)c->buf.p;
		if (rec->kind == SB_REC_PAD) {
			c->aux_pos += rec->len;
			continue;
		}
		if (r == SB_READ_BUSY && !c->writer_gone) {
			busy =
			    true; /* the coordinator commits before W3; only a crash leaves this */
			break;
		}
		if (rec->seq <= c->aux_cursor) {
			ret = sb__fail(
			    -EPROTO, "aux record has sequence %llu, not after the cursor %llu",
			    (unsigned long long)rec->seq, (unsigned long long)c->aux_cursor);
			break;
		}
		uint64_t gap = rec->seq - c->aux_cursor - 1;
		if (gap && !c->aux_gap_ok) {
			ret = sb__fail(-EPROTO, "aux records %llu..%llu are missing without a lap",
				       (unsigned long long)c->aux_cursor + 1,
				       (unsigned long long)rec->seq - 1);
			break;
		}
		if (r == SB_READ_BUSY) {
			aux_account(c, rec, gap, &d.torn, &d);
			continue;
		}
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
	c->aux_more = !busy && c->aux_pos != head;
	c->aux_totals.records += d.records;
	c->aux_totals.delivered += d.delivered;
	c->aux_totals.lapped += d.lapped;
	c->aux_totals.torn += d.torn;
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
	*installed = sb_load_acquire(&c->hot->accessor_installed) != 0;
	uint32_t st = sb_load_acquire(&c->hot->accessor_state); /* pairs with A1 */
	*seqno = sb_load_acquire(&c->hot->accessor_seqno);
	if (st > SB_WORKER_FAILED_PERMANENTLY)
		return sb__fail(-EBADMSG, "the region holds accessor worker state %u", st);
	*state = (enum sb_worker_state)st;
	return 0;
}

static bool coordinator_gone(void *arg)
{
	return sb__consumer_coord_state(arg) != SB_COORD_ALIVE;
}

int sb_consumer_wait_worker_not_trying(struct sb_consumer *c, uint64_t deadline_ns,
				       const char *op_label)
{
	if (!c)
		return sb__fail(-EINVAL, "consumer is NULL");
	return sb__accessor_wait_not_trying(c->hot, deadline_ns, op_label, coordinator_gone, c);
}

int sb_consumer_wait_publish_advance(struct sb_consumer *c, uint64_t seqno_before,
				     uint64_t deadline_ns, const char *op_label, uint64_t *seqno)
{
	if (!c)
		return sb__fail(-EINVAL, "consumer is NULL");
	return sb__accessor_wait_advance(c->hot, seqno_before, deadline_ns, op_label,
					 coordinator_gone, c, seqno);
}
