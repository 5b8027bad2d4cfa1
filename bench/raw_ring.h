/*
 * bench/raw_ring.h - the smallest single-writer broadcast ring in a
 * memfd, written for the benchmark as the limit of this kind of
 * structure: what snapbridge's record log would cost with no tags, no
 * index, no events, no fates and no consumer accounting beyond "lapped".
 *
 *   page 0      tail (free-running byte position after the newest record)
 *   page 0+64   tail_intent (the writer may be rewriting bytes below
 *               tail_intent - size)
 *   page 0+128  first (the oldest record still whole: where a lapped
 *               reader resumes)
 *   page 1..    the data ring: records [seq u64][len u32][pad u32][payload],
 *               16-byte aligned; a record with seq 0 pads to the ring's end.
 *
 *   writer  W0 advance first past the records the new one overwrites
 *           W1 store tail_intent = new end, fence release   (pairs with R3)
 *           W2 write the record
 *           W3 store_release(tail)                          (pairs with R1)
 *   reader  R1 load_acquire(tail); R2 copy the record at the cursor,
 *           bounding len by the ring; R3 fence acquire, load tail_intent:
 *           if it passed cursor + size, the copy may be torn: lapped, and
 *           the reader resumes at first (loaded after tail_intent).
 *
 * Consumers map the memfd read-only (it is sealed against writable maps).
 */
#ifndef SB_BENCH_RAW_RING_H
#define SB_BENCH_RAW_RING_H

#include <stddef.h>
#include <stdint.h>

struct rr_ring {
	int fd;
	uint8_t *map;	/* header page + data */
	uint64_t size;	/* data bytes, a multiple of 16 */
	uint64_t head;	/* writer-private copy of tail */
	uint64_t first; /* writer-private copy of first */
	uint64_t seq;	/* writer: last sequence written */
};

/* A sealed memfd of size data bytes, mapped read-write by the caller. 0 or -errno. */
int rr_create(uint64_t size, struct rr_ring *out);
void rr_destroy(struct rr_ring *r);

/* Append one record (len <= size / 2); its sequence number is ++r->seq. */
void rr_append(struct rr_ring *r, const void *payload, uint32_t len);

struct rr_reader {
	const uint8_t *map;
	uint64_t size;
	size_t map_len;
	uint64_t cursor;
	uint64_t next_seq; /* sequence expected next; gaps are lost records */
};

/* Map fd read-only and start at the current tail. 0 or -errno. */
int rr_reader_open(int fd, uint64_t size, struct rr_reader *out);
void rr_reader_close(struct rr_reader *rd);

/*
 * Copy the next record into buf (cap bytes). Returns its length, 0 when
 * there is nothing new, or -EBADMSG for a record that fails validation.
 * *lost grows by the records the writer lapped before they were read.
 */
long rr_read(struct rr_reader *rd, void *buf, size_t cap, uint64_t *seq, uint64_t *lost);

#endif
