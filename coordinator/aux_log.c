/*
 * coordinator/aux_log.c - the kernel-op and cgroup.procs logs: kept
 * privately with the reference's destructive drains and first-match
 * lookups, and appended to the region's aux log for consumers.
 *
 * Locking: aux_lock covers both private logs and every write to the aux
 * log, so the two orders (private and shared) are the same order. It is
 * never held with b->lock, no callback runs under it, and consumers are
 * told of an append only after it is dropped.
 */
#define _GNU_SOURCE
#include "bridge_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ring/atomics.h"
#include "../ring/error.h"
#include "../ring/format/aux_record.h"
#include "../ring/format/kernel_op.h"

void sb__aux_log_init(struct sb_bridge *b)
{
	pthread_mutex_init(&b->aux_lock, NULL);
}

void sb__aux_log_fini(struct sb_bridge *b)
{
	struct sb_kop_log kops = { b->kops.count, b->kops.items };
	struct sb_cgroup_procs_log procs = { b->procs.count, b->procs.items };

	sb_kop_log_free(&kops);
	sb_cgroup_procs_log_free(&procs);
	pthread_mutex_destroy(&b->aux_lock);
}

/* ---- the aux log ---------------------------------------------------------------- */

static void reclaim_nothing(void *arg, struct sb_rec *rec, uint64_t pos)
{
	/* Aux records are a stream: the private logs keep the coordinator's copy. */
	(void)arg;
	(void)rec;
	(void)pos;
}

/* Whether a record of these parts can ever fit the aux log (half of it at most). */
static int aux_fits(const struct sb_bridge *b, const char *tag, size_t payload)
{
	if (payload > b->aux.size / 2 - sizeof(struct sb_rec))
		return sb__fail(-E2BIG,
				"%s: a %zu-byte aux record can never fit a %llu-byte aux log "
				"(limit: half of it); raise aux_bytes",
				tag, payload, (unsigned long long)b->aux.size);
	return 0;
}

/*
 * Append one record; the caller holds aux_lock and checked aux_fits(). The
 * whole record is written and committed before head moves (W3), so a
 * reader never waits on an aux record in flight.
 */
static void aux_append(struct sb_bridge *b, uint16_t kind, const char *tag, size_t tag_len,
		       const char *cgroup, size_t cgroup_len, const void *payload, size_t len)
{
	uint32_t rec_len = sb__rec_len(tag_len + cgroup_len + len);
	uint64_t pos = sb__log_reserve(&b->aux, rec_len, reclaim_nothing, NULL);
	struct sb_rec *rec = sb__log_rec(&b->aux, pos);
	uint8_t *p = (uint8_t *)(rec + 1);
	uint64_t seq = sb_load_relaxed(&b->hot->aux_seq) + 1;

	rec->kind = kind;
	rec->seq = seq;
	rec->tag_len = (uint16_t)tag_len;
	rec->schema_len = (uint16_t)cgroup_len;
	rec->report_len = (uint32_t)len;
	memcpy(p, tag, tag_len);
	if (cgroup_len)
		memcpy(p + tag_len, cgroup, cgroup_len);
	memcpy(p + tag_len + cgroup_len, payload, len);
	sb__rec_commit(rec);			 /* W4 */
	sb__log_publish(&b->aux, pos + rec_len); /* W3 */
	sb__log_publish_seq(&b->hot->aux_seq, seq); /* W3s */
	/* The caller notifies (N2-N4) once aux_lock is dropped. */
}

/* Make room for one more entry of size bytes in a private log; false on ENOMEM. */
static bool vec_grow(struct sb_vec *v, size_t size)
{
	if (v->count < v->cap)
		return true;
	size_t n = v->cap ? v->cap * 2 : 16;
	void *p = realloc(v->items, n * size);
	if (!p)
		return false;
	v->items = p;
	v->cap = n;
	return true;
}

/* A destructive drain: hand the caller the whole log and start a new one. */
static void vec_take(struct sb_bridge *b, struct sb_vec *v, void **items, size_t *count)
{
	pthread_mutex_lock(&b->aux_lock);
	*items = v->items;
	*count = v->count;
	*v = (struct sb_vec){ NULL, 0, 0 };
	pthread_mutex_unlock(&b->aux_lock);
}

/* ---- kernel ops ------------------------------------------------------------------ */

/* Log (tag, reply) given its encoded form: into the private log and the aux log. */
static int kop_log(struct sb_bridge *b, const char *tag, size_t tag_len, const void *enc,
		   size_t enc_len)
{
	struct sb_kop_reply *copy;
	char *tag_copy;
	int err = aux_fits(b, tag, tag_len + enc_len);

	if (err)
		return err;
	err = sb_kop_reply_decode(enc, enc_len, &copy);
	if (err)
		return err;
	tag_copy = strndup(tag, tag_len);
	pthread_mutex_lock(&b->aux_lock);
	if (!tag_copy || !vec_grow(&b->kops, sizeof(struct sb_kop_record))) {
		pthread_mutex_unlock(&b->aux_lock);
		free(tag_copy);
		sb_kop_reply_free(copy);
		return sb__fail(-ENOMEM, "out of memory logging kernel op %s", tag);
	}
	((struct sb_kop_record *)b->kops.items)[b->kops.count++] =
	    (struct sb_kop_record){ tag_copy, copy };
	aux_append(b, SB_REC_KERNEL_OP, tag, tag_len, NULL, 0, enc, enc_len);
	pthread_mutex_unlock(&b->aux_lock);
	sb__bridge_notify(b, SB_WAKE_AUX);
	return 0;
}

/*
 * The callback ran (it may have written kernel memory) but its reply broke
 * a bound: the logs must still show the op, so a failed reply naming the
 * refusal takes its place. Returns the refusal.
 */
static int log_refused_reply(struct sb_bridge *b, const struct sb_kop_request *req, size_t tag_len,
			     int refusal)
{
	char why[300], reason[SB_KOP_REASON_MAX + 1];
	struct sb_kop_reply sub = { .id = req->id, .success = false, .reason = reason };
	void *enc;
	size_t enc_len;

	snprintf(why, sizeof(why), "%s", sb_last_error());
	snprintf(reason, sizeof(reason), "the callback's reply was refused: %.200s", why);
	int err = sb_kop_reply_encode(&sub, &enc, &enc_len);
	if (!err) {
		err = kop_log(b, req->tag, tag_len, enc, enc_len);
		free(enc);
	}
	if (err)
		return sb__fail(refusal,
				"kernel op %s ran, but its reply was refused (%s) and even "
				"a failed reply could not be logged",
				req->tag, why);
	return sb__fail(refusal,
			"kernel op %s ran, but its reply was refused (%s); a failed reply "
			"saying so was logged in its place",
			req->tag, why);
}

int sb_bridge_dispatch_kernel_op(struct sb_bridge *b, const struct sb_kop_request *req,
				 struct sb_kop_reply **reply_out)
{
	void *enc;
	size_t enc_len, tag_len;
	int err;

	if (reply_out)
		*reply_out = NULL;
	if (!b || !req)
		return sb__fail(-EINVAL, "sb_bridge_dispatch_kernel_op: NULL argument");
	if (!b->ops.kernel_op)
		return sb__fail(
		    -ENOSYS, "kernel op %.64s: no kernel-op callback is installed on this bridge",
		    req->tag ? req->tag : "(no tag)");
	/* Every bound of the request, checked by encoding it. */
	err = sb_kop_request_encode(req, &enc, &enc_len);
	if (err)
		return err;
	free(enc);
	sb__kop_check_tag(req->tag, &tag_len);

	struct sb_kop_reply reply = { .id = req->id,
				      .success = false,
				      .reason = "the kernel-op callback left the reply unset" };
	b->ops.kernel_op(b->ops.user, req, &reply);
	err = sb_kop_reply_encode(&reply, &enc, &enc_len);
	if (b->ops.kernel_op_release)
		b->ops.kernel_op_release(b->ops.user, &reply);
	if (err)
		return log_refused_reply(b, req, tag_len, err);
	err = kop_log(b, req->tag, tag_len, enc, enc_len);
	if (!err && reply_out && sb_kop_reply_decode(enc, enc_len, reply_out) != 0)
		err = sb__fail(-ENOMEM,
			       "kernel op %s: the reply was logged, but no copy of it could "
			       "be made for the caller",
			       req->tag);
	free(enc);
	return err;
}

int sb_bridge_record_kernel_op_reply(struct sb_bridge *b, const char *tag,
				     const struct sb_kop_reply *reply)
{
	void *enc;
	size_t enc_len, tag_len;
	int err;

	if (!b || !reply)
		return sb__fail(-EINVAL, "sb_bridge_record_kernel_op_reply: NULL argument");
	err = sb__kop_check_tag(tag, &tag_len);
	if (err)
		return err;
	err = sb_kop_reply_encode(reply, &enc, &enc_len);
	if (err)
		return err;
	err = kop_log(b, tag, tag_len, enc, enc_len);
	free(enc);
	return err;
}

int sb_bridge_drain_kernel_ops(struct sb_bridge *b, struct sb_kop_log *out)
{
	if (!b || !out)
		return sb__fail(-EINVAL, "sb_bridge_drain_kernel_ops: NULL argument");
	vec_take(b, &b->kops, (void **)&out->items, &out->count);
	return 0;
}

static int value_copy(const struct sb_kop_value *v, struct sb_kop_value *out)
{
	*out = *v;
	if (v->kind != SB_KOP_BYTES)
		return 0;
	uint8_t *p = malloc(v->len ? v->len : 1);
	if (!p)
		return sb__fail(-ENOMEM, "out of memory copying a %zu-byte value", v->len);
	if (v->len)
		memcpy(p, v->bytes, v->len);
	out->bytes = p;
	return 0;
}

int sb_bridge_kernel_op_value(struct sb_bridge *b, const char *tag, struct sb_kop_value *out)
{
	int err = -ENOENT;

	if (!b || !tag || !out)
		return sb__fail(-EINVAL, "sb_bridge_kernel_op_value: NULL argument");
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&b->aux_lock);
	for (size_t i = 0; i < b->kops.count; i++) {
		const struct sb_kop_record *r = (const struct sb_kop_record *)b->kops.items + i;

		if (strcmp(r->tag, tag) == 0 && r->reply->success && r->reply->n_values > 0) {
			err = value_copy(&r->reply->read_values[0], out);
			break;
		}
	}
	pthread_mutex_unlock(&b->aux_lock);
	if (err == -ENOENT)
		return sb__fail(-ENOENT,
				"no successful kernel-op reply with read values is logged "
				"under tag %.64s",
				tag);
	return err;
}

/* ---- cgroup.procs ------------------------------------------------------------------ */

int sb_bridge_record_cgroup_procs(struct sb_bridge *b, const char *tag, const char *cgroup,
				  const int32_t *pids, size_t n)
{
	struct sb_cgroup_procs *snap;
	size_t tag_len, cg_len, enc_len;
	void *enc;
	int err;

	if (!b)
		return sb__fail(-EINVAL, "bridge is NULL");
	err = sb__cgroup_check(tag, cgroup, pids, n, &tag_len, &cg_len);
	if (err)
		return err;
	err = sb__pids_encode(pids, n, &enc, &enc_len);
	if (err)
		return err;
	err = aux_fits(b, tag, tag_len + cg_len + enc_len);
	if (!err)
		err = sb__cgroup_procs_new(tag, tag_len, cgroup, cg_len, pids, n, &snap);
	if (err) {
		free(enc);
		return err;
	}
	pthread_mutex_lock(&b->aux_lock);
	if (!vec_grow(&b->procs, sizeof(struct sb_cgroup_procs *))) {
		pthread_mutex_unlock(&b->aux_lock);
		free(enc);
		sb_cgroup_procs_free(snap);
		return sb__fail(-ENOMEM, "out of memory logging cgroup.procs %s", tag);
	}
	((struct sb_cgroup_procs **)b->procs.items)[b->procs.count++] = snap;
	aux_append(b, SB_REC_CGROUP_PROCS, tag, tag_len, cgroup, cg_len, enc, enc_len);
	pthread_mutex_unlock(&b->aux_lock);
	sb__bridge_notify(b, SB_WAKE_AUX);
	free(enc);
	return 0;
}

int sb_bridge_drain_cgroup_procs(struct sb_bridge *b, struct sb_cgroup_procs_log *out)
{
	if (!b || !out)
		return sb__fail(-EINVAL, "sb_bridge_drain_cgroup_procs: NULL argument");
	vec_take(b, &b->procs, (void **)&out->items, &out->count);
	return 0;
}

int sb_bridge_cgroup_procs_by_tag(struct sb_bridge *b, const char *tag,
				  struct sb_cgroup_procs **out)
{
	int err = -ENOENT;

	if (!b || !tag || !out)
		return sb__fail(-EINVAL, "sb_bridge_cgroup_procs_by_tag: NULL argument");
	*out = NULL;
	pthread_mutex_lock(&b->aux_lock);
	for (size_t i = 0; i < b->procs.count; i++) {
		const struct sb_cgroup_procs *p = ((struct sb_cgroup_procs **)b->procs.items)[i];

		if (strcmp(p->tag, tag) == 0) {
			err = sb__cgroup_procs_new(p->tag, strlen(p->tag), p->cgroup,
						   strlen(p->cgroup), p->pids, p->n_pids, out);
			break;
		}
	}
	pthread_mutex_unlock(&b->aux_lock);
	if (err == -ENOENT)
		return sb__fail(-ENOENT, "no cgroup.procs snapshot is logged under tag %.64s", tag);
	return err;
}
