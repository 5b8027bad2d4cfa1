/*
 * fuzz_codec.c - the decoders a consumer runs on record bytes from shared
 * memory: the msgpack validator (sb__msgpack_check, cross-checked against
 * msgpack-c), the missing-stats reason decoder (sb__missing_decode, with a
 * re-encode round trip), and the record parser (sb__rec_parse) on a record
 * whose length a reader has already bounded.
 *
 * Input: byte 0 picks the decoder, the rest is its bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include <msgpack.h>
#include <snapbridge/snapbridge.h>

#include "../../ring/format/msgpack.h"
#include "../../ring/format/missing_stats.h"
#include "../../ring/layout.h"
#include "../../ring/format/snapshot.h"
#include "fuzz.h"

SB_FUZZ_MAIN

void sb_fuzz_init(void)
{
}

/* A buffer of exactly n bytes, so that ASan sees a read past the input. */
static uint8_t *exact_copy(const uint8_t *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);

	if (n)
		memcpy(q, p, n);
	return q;
}

static void fuzz_msgpack(const uint8_t *p, size_t n)
{
	if (sb__msgpack_check(p, n) != 0)
		return;
	/*
	 * What the validator accepts, msgpack-c must parse as exactly one
	 * object; the only allowed refusal is its fixed nesting limit.
	 */
	msgpack_unpacked u;
	size_t off = 0;

	if (n > 1 << 16)
		return; /* msgpack-c's allocations, not the validator, would be measured */
	msgpack_unpacked_init(&u);
	msgpack_unpack_return r = msgpack_unpack_next(&u, (const char *)p, n, &off);
	SB_FUZZ_CHECK((r == MSGPACK_UNPACK_SUCCESS && off == n) || r == MSGPACK_UNPACK_NOMEM_ERROR);
	msgpack_unpacked_destroy(&u);
}

static void fuzz_missing(const uint8_t *p, size_t n)
{
	static char text[SB_REASON_MAX + 1], text2[SB_REASON_MAX + 1];
	static uint8_t enc[SB_MISSING_ENC_MAX];
	struct sb_missing m, m2;
	size_t len;

	if (sb__missing_decode(p, n, &m, text) != 0)
		return;
	SB_FUZZ_CHECK(m.kind >= SB_MISSING_NO_SCHEDULER_BINARY &&
		      m.kind <= SB_MISSING_MUTEX_POISONED);
	SB_FUZZ_CHECK(!m.text || m.text == text);
	/* A decoded reason is one the writer could have stored. */
	SB_FUZZ_CHECK(sb__missing_check(&m) == 0);
	SB_FUZZ_CHECK(sb__missing_encode(&m, enc, sizeof(enc), &len) == 0);
	SB_FUZZ_CHECK(sb__missing_decode(enc, len, &m2, text2) == 0);
	SB_FUZZ_CHECK(m2.kind == m.kind);
	SB_FUZZ_CHECK(!m.text == !m2.text && (!m.text || strcmp(m.text, m2.text) == 0));
	SB_FUZZ_CHECK(m2.err == m.err && m2.size == m.size && m2.max == m.max);
}

static void fuzz_record(const uint8_t *p, size_t n)
{
	static char text[SB_REASON_MAX + 1];
	struct sb_entry view;
	/* What sb__log_copy guarantees: a whole number of 64-byte units, at least one. */
	size_t len = n < sizeof(struct sb_rec) ? sizeof(struct sb_rec) : n & ~(size_t)63;

	if (len > 1 << 20)
		return;
	struct sb_rec *rec = aligned_alloc(64, len);
	memset(rec, 0, len);
	memcpy(rec, p, n < len ? n : len);
	rec->len = (uint32_t)len;
	if (sb__rec_parse(rec, &view, text) == 0) {
		const uint8_t *lo = (const uint8_t *)rec, *hi = lo + len;
		const uint8_t *r = view.report;

		SB_FUZZ_CHECK(r >= lo && r + view.report_len <= hi);
		SB_FUZZ_CHECK(strlen(view.tag) <= SB_TAG_MAX &&
			      strlen(view.schema) <= SB_SCHEMA_MAX);
		if (view.stats.kind == SB_STATS_OK) {
			const uint8_t *s = view.stats.msgpack;
			SB_FUZZ_CHECK(s >= lo && s + view.stats.msgpack_len <= hi);
		}
		/* What a consumer does next with it. */
		sb__msgpack_check(view.report, view.report_len);
	}
	free(rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t *p = exact_copy(data + 1, size - 1);

	switch (data[0] % 3) {
	case 0:
		fuzz_msgpack(p, size - 1);
		break;
	case 1:
		fuzz_missing(p, size - 1);
		break;
	case 2:
		fuzz_record(p, size - 1);
		break;
	}
	free(p);
	return 0;
}

void sb_fuzz_seeds(const char *dir)
{
	/* {"a": [1, -2, 3.5, "xyz", nil, true, bin(2)], "b": {}} */
	static const uint8_t doc[] = { 0x82, 0xa1, 'a',	 0x97, 0x01, 0xfe, 0xcb, 0x40, 0x0c, 0,
				       0,    0,	   0,	 0,    0,    0xa3, 'x',	 'y',  'z',  0xc0,
				       0xc3, 0xc4, 0x02, 0xaa, 0xbb, 0xa1, 'b',	 0x80 };
	uint8_t enc[SB_MISSING_ENC_MAX];
	size_t len;
	struct sb_missing m = { .kind = SB_MISSING_SCHEDULER_ERROR, .text = "--flag", .err = 5 };

	sb_fuzz_seed_mode(dir, "msgpack-map", 0, doc, sizeof(doc));
	sb__missing_encode(&m, enc, sizeof(enc), &len);
	sb_fuzz_seed_mode(dir, "missing-scheduler-error", 1, enc, len);
	m = (struct sb_missing){ .kind = SB_MISSING_REQUEST_TOO_LARGE,
				 .size = 1 << 20,
				 .max = 4096 };
	sb__missing_encode(&m, enc, sizeof(enc), &len);
	sb_fuzz_seed_mode(dir, "missing-too-large", 1, enc, len);

	/* A record as the writer lays it out: tag, schema, report, encoded missing stats. */
	uint8_t rec_buf[256] = { 0 };
	struct sb_rec *rec = (struct sb_rec *)rec_buf;
	m = (struct sb_missing){ .kind = SB_MISSING_NO_SCHEDULER, .text = "gone" };
	sb__missing_encode(&m, enc, sizeof(enc), &len);
	rec->commit = SB_REC_COMMITTED;
	rec->fate = SB_FATE_RESIDENT;
	rec->len = sizeof(rec_buf);
	rec->kind = SB_REC_SNAPSHOT;
	rec->flags = SB_F_HAS_STATS | SB_F_HAS_STEP;
	rec->seq = 7;
	rec->tag_len = 3;
	rec->schema_len = 2;
	rec->report_len = sizeof(doc);
	rec->stats_len = (uint32_t)len;
	rec->step_index = 2;
	uint8_t *body = rec_buf + sizeof(*rec);
	memcpy(body, "tagsc", 5);
	memcpy(body + 5, doc, sizeof(doc));
	memcpy(body + 5 + sizeof(doc), enc, len);
	sb_fuzz_seed_mode(dir, "record-missing-stats", 2, rec_buf, sizeof(rec_buf));
}
