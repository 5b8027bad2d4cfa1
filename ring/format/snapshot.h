/*
 * ring/format/snapshot.h - reading a snapshot record's contents. Used on a stable
 * copy (consumers) or on a committed record the caller owns (the
 * coordinator's own drains); every length is checked against the record.
 */
#ifndef SB_RING_FORMAT_SNAPSHOT_H
#define SB_RING_FORMAT_SNAPSHOT_H

#include <snapbridge/types.h>

#include "../layout.h"

/*
 * Fill a view of the record's snapshot: its pointers point into rec, the
 * missing-stats text into text (SB_REASON_MAX + 1 bytes). Returns -EBADMSG
 * when the lengths do not fit in the record or a field is out of range.
 */
int sb__rec_parse(const struct sb_rec *rec, struct sb_entry *view, char *text);

/* Turn a view into an entry that owns its buffers (freed by sb_entries_free). */
int sb__entry_dup(const struct sb_entry *view, struct sb_entry *owned);

/* 0 when tag is 1..SB_TAG_MAX bytes, with *len set; else -EINVAL / -ENAMETOOLONG. */
int sb__check_tag(const char *tag, size_t *len);

/* Free one owned entry's buffers. */
void sb__entry_release(struct sb_entry *owned);

#endif
