/*
 * consumers/accessor.c - the accessor worker's state as a consumer reads
 * it, and the two waits on it (ring/accessor.h has the protocol; the
 * sleeping step is the consumer's bell, consumers/wait.c).
 */
#include <errno.h>

#include <snapbridge/consumer.h>

#include "../ring/accessor.h"
#include "../ring/error.h"
#include "consumer_internal.h"

int sb_consumer_accessor(const struct sb_consumer *c, bool *installed, uint64_t *seqno,
			 enum sb_worker_state *state)
{
	if (!c || !installed || !seqno || !state)
		return sb__fail(-EINVAL, "sb_consumer_accessor: NULL argument");
	struct sb_accessor_view v;

	sb__accessor_read(c->hot, &v);
	*installed = v.installed;
	*seqno = v.seqno;
	uint32_t st = v.state;
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
