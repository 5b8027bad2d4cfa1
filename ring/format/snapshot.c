/*
 * ring/format/snapshot.c - what a snapshot record holds: parsing a copy of
 * one (every length checked against the record), owned entries, and the
 * tag rules.
 */
#include "snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../error.h"
#include "missing_stats.h"

int sb__rec_parse(const struct sb_rec *rec, struct sb_entry *view, char *text)
{
	const uint8_t *body = (const uint8_t *)(rec + 1);
	uint64_t need = (uint64_t)sizeof(*rec) + rec->tag_len + rec->schema_len + rec->report_len +
			rec->stats_len;

	if (rec->kind != SB_REC_SNAPSHOT || rec->tag_len == 0 || rec->tag_len > SB_TAG_MAX ||
	    rec->schema_len > SB_SCHEMA_MAX || need > rec->len || (rec->flags & ~SB_F_KNOWN) ||
	    (rec->flags & SB_F_RESIDENT))
		return sb__fail(-EBADMSG,
				"record %llu is malformed: kind %u, tag %u, schema %u, report %u, "
				"stats %u bytes in a %u-byte record, flags 0x%x",
				(unsigned long long)rec->seq, rec->kind, rec->tag_len,
				rec->schema_len, rec->report_len, rec->stats_len, rec->len,
				rec->flags);
	memset(view, 0, sizeof(*view));
	memcpy(view->tag, body, rec->tag_len);
	body += rec->tag_len;
	memcpy(view->schema, body, rec->schema_len);
	body += rec->schema_len;
	view->store_seq = rec->seq;
	view->placeholder = rec->flags & SB_F_PLACEHOLDER;
	view->report = body;
	view->report_len = rec->report_len;
	body += rec->report_len;

	if (rec->flags & SB_F_HAS_STATS) {
		if (rec->flags & SB_F_STATS_OK) {
			view->stats.kind = SB_STATS_OK;
			view->stats.msgpack = body;
			view->stats.msgpack_len = rec->stats_len;
		} else {
			int err =
			    sb__missing_decode(body, rec->stats_len, &view->stats.missing, text);
			if (err)
				return err;
			view->stats.kind = SB_STATS_MISSING;
		}
	}
	view->meta.has_elapsed = rec->flags & SB_F_HAS_ELAPSED;
	view->meta.has_boundary = rec->flags & SB_F_HAS_BOUNDARY;
	view->meta.has_step = rec->flags & SB_F_HAS_STEP;
	view->meta.elapsed_ms = view->meta.has_elapsed ? rec->elapsed_ms : 0;
	view->meta.boundary_offset_ms = view->meta.has_boundary ? rec->boundary_offset_ms : 0;
	view->meta.step_index = view->meta.has_step ? rec->step_index : 0;
	return 0;
}

static void *dup_bytes(const void *p, size_t n)
{
	void *q = malloc(n ? n : 1);

	if (q && n)
		memcpy(q, p, n);
	return q;
}

int sb__entry_dup(const struct sb_entry *view, struct sb_entry *owned)
{
	*owned = *view;
	owned->report = dup_bytes(view->report, view->report_len);
	owned->stats.msgpack = NULL;
	owned->stats.missing.text = NULL;
	if (view->stats.kind == SB_STATS_OK)
		owned->stats.msgpack = dup_bytes(view->stats.msgpack, view->stats.msgpack_len);
	if (view->stats.kind == SB_STATS_MISSING && view->stats.missing.text)
		owned->stats.missing.text = strdup(view->stats.missing.text);
	if (!owned->report || (view->stats.kind == SB_STATS_OK && !owned->stats.msgpack) ||
	    (view->stats.missing.text && view->stats.kind == SB_STATS_MISSING &&
	     !owned->stats.missing.text)) {
		sb__entry_release(owned);
		return sb__fail(-ENOMEM, "out of memory copying the report of %s", view->tag);
	}
	return 0;
}

void sb__entry_release(struct sb_entry *owned)
{
	free((void *)owned->report);
	free((void *)owned->stats.msgpack);
	free((void *)owned->stats.missing.text);
	owned->report = NULL;
	owned->stats.msgpack = NULL;
	owned->stats.missing.text = NULL;
}

void sb_entries_free(struct sb_entries *entries)
{
	if (!entries)
		return;
	for (size_t i = 0; i < entries->count; i++)
		sb__entry_release(&entries->items[i]);
	free(entries->items);
	entries->items = NULL;
	entries->count = 0;
}

bool sb_tag_is_periodic(const char *tag)
{
	static const char prefix[] = "periodic_";

	if (!tag || strncmp(tag, prefix, sizeof(prefix) - 1) != 0)
		return false;
	const char *d = tag + sizeof(prefix) - 1;
	for (int i = 0; i < 3; i++)
		if (d[i] < '0' || d[i] > '9')
			return false;
	return d[3] == '\0';
}

int sb__check_tag(const char *tag, size_t *len)
{
	if (!tag || !tag[0])
		return sb__fail(-EINVAL, "tag is %s: a tag needs 1..%d bytes",
				tag ? "empty" : "NULL", SB_TAG_MAX);
	*len = strnlen(tag, SB_TAG_MAX + 1);
	if (*len > SB_TAG_MAX)
		return sb__fail(-ENAMETOOLONG, "tag \"%.20s...\" is longer than %d bytes", tag,
				SB_TAG_MAX);
	return 0;
}
