/*
 * ring/format/aux_record.c - the aux log's records (format in
 * aux_record.h): building
 * the cgroup.procs payload, and parsing a record a consumer copied out of
 * shared memory, where every length is hostile until checked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "../error.h"
#include "aux_record.h"
#include "kernel_op.h"
#include "msgpack.h"

int sb__cgroup_check(const char *tag, const char *cgroup, const int32_t *pids, size_t n,
		     size_t *tag_len, size_t *cgroup_len)
{
	int err = sb__kop_check_tag(tag, tag_len);

	if (err)
		return err;
	if (!cgroup || !cgroup[0])
		return sb__fail(-EINVAL, "cgroup.procs %s: the cgroup name is %s", tag,
				cgroup ? "empty" : "NULL");
	*cgroup_len = strnlen(cgroup, SB_CGROUP_NAME_MAX + 1);
	if (*cgroup_len > SB_CGROUP_NAME_MAX)
		return sb__fail(-ENAMETOOLONG,
				"cgroup.procs %s: the cgroup name is longer than %d bytes", tag,
				SB_CGROUP_NAME_MAX);
	if (n > SB_CGROUP_PIDS_MAX)
		return sb__fail(-E2BIG, "cgroup.procs %s: %zu pids, more than %u", tag, n,
				SB_CGROUP_PIDS_MAX);
	if (n && !pids)
		return sb__fail(-EINVAL, "cgroup.procs %s: %zu pids at NULL", tag, n);
	return 0;
}

int sb__pids_encode(const int32_t *pids, size_t n, void **buf, size_t *len)
{
	struct sb_pack p;

	sb__pack_init(&p);
	msgpack_pack_array(&p.pk, n);
	for (size_t i = 0; i < n; i++)
		msgpack_pack_int32(&p.pk, pids[i]);
	return sb__pack_finish(&p, SB_PIDS_ENC_MAX, "pid list", buf, len);
}

int sb__cgroup_procs_new(const char *tag, size_t tag_len, const char *cgroup, size_t cgroup_len,
			 const int32_t *pids, size_t n, struct sb_cgroup_procs **out)
{
	/* struct, then the pids (int32-aligned after the struct), then both strings */
	size_t size =
	    sizeof(struct sb_cgroup_procs) + n * sizeof(int32_t) + tag_len + 1 + cgroup_len + 1;
	struct sb_cgroup_procs *p = malloc(size);

	if (!p)
		return sb__fail(-ENOMEM, "out of memory for a cgroup.procs snapshot of %zu pids",
				n);
	p->pids = (int32_t *)(p + 1);
	p->n_pids = n;
	if (n)
		memcpy(p->pids, pids, n * sizeof(int32_t));
	p->tag = (char *)(p->pids + n);
	memcpy(p->tag, tag, tag_len);
	p->tag[tag_len] = '\0';
	p->cgroup = p->tag + tag_len + 1;
	memcpy(p->cgroup, cgroup, cgroup_len);
	p->cgroup[cgroup_len] = '\0';
	*out = p;
	return 0;
}

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/*
 * Decode the pids of an untrusted payload by hand: an array header, then
 * one integer per pid, each bounded by the bytes left before it is read,
 * so the only allocation is 4 bytes per pid the payload really holds.
 */
static int pids_decode(const uint8_t *p, size_t len, int32_t **pids, size_t *n)
{
	size_t i = 0, count;

	*pids = NULL;
	*n = 0;
	if (len < 1)
		goto bad;
	if ((p[0] & 0xf0) == 0x90) {
		count = p[0] & 0x0f;
		i = 1;
	} else if (p[0] == 0xdc && len >= 3) {
		count = (size_t)be(p + 1, 2);
		i = 3;
	} else if (p[0] == 0xdd && len >= 5) {
		count = (size_t)be(p + 1, 4);
		i = 5;
	} else {
		goto bad;
	}
	/* Every pid takes at least one byte: a count beyond the bytes left is a lie. */
	if (count > SB_CGROUP_PIDS_MAX || count > len - i)
		goto bad;
	*pids = malloc(sizeof(int32_t) * (count ? count : 1));
	if (!*pids)
		return sb__fail(-ENOMEM, "out of memory for %zu pids", count);
	for (size_t k = 0; k < count; k++) {
		uint8_t t = p[i++];
		int64_t v;
		int w = 0;

		if (t <= 0x7f)
			v = t;
		else if (t >= 0xe0)
			v = (int8_t)t;
		else if (t >= 0xcc && t <= 0xce) /* uint8, uint16, uint32 */
			w = 1 << (t - 0xcc);
		else if (t >= 0xd0 && t <= 0xd2) /* int8, int16, int32 */
			w = 1 << (t - 0xd0);
		else
			goto bad_free;
		if (w) {
			if (len - i < (size_t)w)
				goto bad_free;
			uint64_t raw = be(p + i, w);
			i += (size_t)w;
			if (t >= 0xd0) /* sign-extend from w bytes */
				v = (int64_t)(raw << (64 - 8 * w)) >> (64 - 8 * w);
			else
				v = (int64_t)raw;
		}
		if (v < INT32_MIN || v > INT32_MAX)
			goto bad_free;
		(*pids)[k] = (int32_t)v;
	}
	if (i != len)
		goto bad_free;
	*n = count;
	return 0;
bad_free:
	free(*pids);
	*pids = NULL;
bad:
	return sb__fail(-EBADMSG,
			"cgroup.procs record: the pids are not an array of at most %u "
			"int32 values",
			SB_CGROUP_PIDS_MAX);
}

int sb__aux_parse(const struct sb_rec *rec, struct sb_aux_item *item, struct sb_aux_owned *own)
{
	const uint8_t *p = (const uint8_t *)(rec + 1);
	uint64_t need = (uint64_t)sizeof(*rec) + rec->tag_len + rec->schema_len + rec->report_len;
	int err;

	memset(own, 0, sizeof(*own));
	memset(item, 0, sizeof(*item));
	if (rec->kind != SB_REC_KERNEL_OP && rec->kind != SB_REC_CGROUP_PROCS)
		return sb__fail(-EBADMSG, "aux record %llu has kind %u",
				(unsigned long long)rec->seq, rec->kind);
	if (rec->fate || rec->slot || rec->elapsed_ms || rec->boundary_offset_ms ||
	    rec->step_index || rec->reserved0 || rec->reserved1)
		return sb__fail(-EBADMSG, "aux record %llu: a field that must be 0 is not",
				(unsigned long long)rec->seq);
	if (need > rec->len || rec->stats_len != 0 || rec->flags != 0)
		return sb__fail(-EBADMSG,
				"aux record %llu: its fields (%u + %u + %u bytes) do not "
				"fit its %u-byte length",
				(unsigned long long)rec->seq, rec->tag_len, rec->schema_len,
				rec->report_len, rec->len);
	if (rec->tag_len == 0 || rec->tag_len > SB_KOP_TAG_MAX || memchr(p, '\0', rec->tag_len))
		return sb__fail(-EBADMSG, "aux record %llu: the tag is %u bytes or holds a NUL",
				(unsigned long long)rec->seq, rec->tag_len);
	const char *tag = (const char *)p;
	const char *cgroup = tag + rec->tag_len;
	const uint8_t *payload = (const uint8_t *)cgroup + rec->schema_len;

	if (sb__msgpack_check(payload, rec->report_len) != 0)
		return sb__fail(-EBADMSG,
				"aux record %llu: the payload is not one msgpack object: %s",
				(unsigned long long)rec->seq, sb__msgpack_error());
	item->seq = rec->seq;
	item->msgpack = payload;
	item->msgpack_len = rec->report_len;

	if (rec->kind == SB_REC_KERNEL_OP) {
		if (rec->schema_len != 0)
			return sb__fail(-EBADMSG, "aux record %llu: a kernel op with a cgroup name",
					(unsigned long long)rec->seq);
		own->tag = strndup(tag, rec->tag_len);
		if (!own->tag)
			return sb__fail(-ENOMEM, "out of memory for an aux record");
		err = sb_kop_reply_decode(payload, rec->report_len, &own->reply);
		if (err) {
			sb__aux_owned_free(own);
			return err;
		}
		item->kind = SB_AUX_KERNEL_OP;
		item->tag = own->tag;
		item->reply = own->reply;
		return 0;
	}

	int32_t *pids;
	size_t n;

	if (rec->schema_len == 0 || rec->schema_len > SB_CGROUP_NAME_MAX ||
	    memchr(cgroup, '\0', rec->schema_len))
		return sb__fail(-EBADMSG,
				"aux record %llu: the cgroup name is %u bytes or holds a NUL",
				(unsigned long long)rec->seq, rec->schema_len);
	err = pids_decode(payload, rec->report_len, &pids, &n);
	if (err)
		return err;
	err =
	    sb__cgroup_procs_new(tag, rec->tag_len, cgroup, rec->schema_len, pids, n, &own->procs);
	free(pids);
	if (err)
		return err;
	item->kind = SB_AUX_CGROUP_PROCS;
	item->tag = own->procs->tag;
	item->procs = own->procs;
	return 0;
}

void sb__aux_owned_free(struct sb_aux_owned *own)
{
	free(own->tag);
	sb_kop_reply_free(own->reply);
	sb_cgroup_procs_free(own->procs);
	memset(own, 0, sizeof(*own));
}

void sb_cgroup_procs_free(struct sb_cgroup_procs *procs)
{
	free(procs);
}

void sb_cgroup_procs_log_free(struct sb_cgroup_procs_log *log)
{
	if (!log)
		return;
	for (size_t i = 0; i < log->count; i++)
		free(log->items[i]);
	free(log->items);
	log->items = NULL;
	log->count = 0;
}
