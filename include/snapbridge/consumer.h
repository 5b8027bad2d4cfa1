/*
 * snapbridge/consumer.h - the reader's side: map a bridge's region
 * read-only and drain it in FIFO order, with exact accounting.
 *
 * A consumer keeps a cursor: the store_seq of the last store it has
 * accounted for. A drain walks the record log from there to the newest
 * committed record and gives every store in that window exactly one
 * outcome:
 *
 *   delivered   the record was the tag's resident version when read
 *               (in all-versions mode: any record still in the log);
 *   superseded  a newer store of the same tag had replaced it;
 *   evicted     the cap, the byte budget or a coordinator drain removed it;
 *   lapped      the writer reused its bytes before the consumer copied them;
 *   torn        the writer died while writing it (never delivered).
 *
 * delivered + superseded + evicted + lapped + torn == stores, always.
 *
 * The region is untrusted: every offset and length is bounded before
 * use, and a record is copied out and then re-validated. A corrupt region
 * yields -EBADMSG (or -EPROTO for a protocol violation) and a message from
 * sb_last_error(), never a crash or an out-of-bounds read.
 *
 * Thread safety: a consumer handle is used by one thread at a time.
 * Consumers never write to the data region and never block the writer.
 */
#ifndef SNAPBRIDGE_CONSUMER_H
#define SNAPBRIDGE_CONSUMER_H

#include <snapbridge/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sb_consumer;

enum sb_consumer_flags {
	/* Deliver every stored version still in the log, not only resident ones. */
	SB_CONSUMER_ALL_VERSIONS = 1u << 0,
	/*
	 * Start at the newest store instead of the oldest still in the log
	 * (skip history). Without it, stores older than the log's tail at
	 * attach count as lapped in the first drain.
	 */
	SB_CONSUMER_START_AT_END = 1u << 1,
};

struct sb_drain_counts {
	uint64_t stores; /* stores accounted for; the sum of the five below */
	uint64_t delivered;
	uint64_t superseded;
	uint64_t evicted;
	uint64_t lapped;
	uint64_t torn;
};

/*
 * Attach to a region through a descriptor of the data memfd. The
 * descriptor must be a memfd sealed against shrinking, growing, resealing
 * and future writes, whose size matches the header; it is mapped
 * PROT_READ only. The caller keeps fd (the consumer holds its own
 * mapping). Returns -EBADF, -EPERM (missing seals), -EBADMSG (a header
 * that fails validation), -EPROTO (another ABI or layout), -ENOMEM.
 */
int sb_consumer_open_fd(int fd, uint32_t flags, struct sb_consumer **out);

/*
 * Open a region image saved to a file. It is read into private memory
 * and validated like a live region; the writer is treated as gone, so an
 * unfinished record counts as torn.
 */
int sb_consumer_open_image(const char *path, uint32_t flags, struct sb_consumer **out);

void sb_consumer_close(struct sb_consumer *consumer);

/*
 * Called once per delivered record, in store order. The entry's pointers
 * are valid until the callback returns. Return 0 to go on; any other value
 * stops the drain after this record and is returned by the drain.
 */
typedef int (*sb_entry_fn)(void *user, const struct sb_entry *entry);

/*
 * Drain from the cursor to the newest committed record. counts (optional)
 * receives this call's outcomes; the cursor moves past every store
 * accounted for. A record still being written by a live writer ends the
 * drain; the next drain resumes there. One call reads at most one log's
 * worth of records, so a caller that wants everything drains until the
 * cursor reaches sb_consumer_store_count(). A record that fails
 * validation is reported (-EBADMSG / -EPROTO) and leaves the cursor and
 * counts as they were.
 */
int sb_consumer_drain(struct sb_consumer *consumer, sb_entry_fn fn, void *user,
		      struct sb_drain_counts *counts);

/* Outcomes summed over every drain of this consumer. */
int sb_consumer_totals(const struct sb_consumer *consumer, struct sb_drain_counts *out);

/* The store_seq of the last store accounted for (0 before the first). */
int sb_consumer_cursor(const struct sb_consumer *consumer, uint64_t *out);

/* Stores the writer has made so far (the newest store_seq). */
int sb_consumer_store_count(const struct sb_consumer *consumer, uint64_t *out);

/*
 * Take the events published since this consumer's last event drain. If the
 * writer overwrote some before they were read, one EventLogTruncated with
 * their count is appended last. Free with sb_events_free().
 */
int sb_consumer_drain_events(struct sb_consumer *consumer, struct sb_events *out);

/* Read the resident index: how many tags are resident, and whether tag is. */
int sb_consumer_len(struct sb_consumer *consumer, size_t *out);
int sb_consumer_has(struct sb_consumer *consumer, const char *tag, bool *out);

/*
 * Tell the consumer the writer is gone (crashed): a record it left
 * unfinished is then counted as torn and skipped instead of waited for.
 */
int sb_consumer_set_writer_gone(struct sb_consumer *consumer, bool gone);

#ifdef __cplusplus
}
#endif
#endif
