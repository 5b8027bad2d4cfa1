/*
 * fuzz_kop.c - decoding kernel-op requests and replies (sb_kop_request_decode,
 * sb_kop_reply_decode) from hostile bytes: what a consumer does with every
 * kernel-op record of the aux log. A decoded document must stay inside the
 * bounds of aux.h, re-encode, and decode again to the same thing.
 *
 * Input: byte 0 picks request (even) or reply (odd), the rest is msgpack.
 */
#define _GNU_SOURCE
#include <string.h>

#include <snapbridge/snapbridge.h>

#include "fuzz.h"

SB_FUZZ_MAIN

void sb_fuzz_init(void)
{
}

static bool same_value(const struct sb_kop_value *a, const struct sb_kop_value *b)
{
	if (a->kind != b->kind || a->num != b->num || a->len != b->len)
		return false;
	return a->kind != SB_KOP_BYTES || a->len == 0 || memcmp(a->bytes, b->bytes, a->len) == 0;
}

static bool same_text(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void fuzz_request(const uint8_t *p, size_t n)
{
	struct sb_kop_request *req, *again;
	void *buf;
	size_t len;

	if (sb_kop_request_decode(p, n, &req) != 0)
		return;
	SB_FUZZ_CHECK(req->tag && strlen(req->tag) >= 1 && strlen(req->tag) <= SB_KOP_TAG_MAX);
	SB_FUZZ_CHECK(req->n_entries <= SB_KOP_ENTRIES_MAX);
	SB_FUZZ_CHECK(sb_kop_request_encode(req, &buf, &len) == 0);
	SB_FUZZ_CHECK(sb_kop_request_decode(buf, len, &again) == 0);
	SB_FUZZ_CHECK(again->id == req->id && again->mode == req->mode &&
		      again->direction == req->direction && strcmp(again->tag, req->tag) == 0 &&
		      again->n_entries == req->n_entries);
	for (size_t i = 0; i < req->n_entries; i++) {
		SB_FUZZ_CHECK(strcmp(again->entries[i].target, req->entries[i].target) == 0);
		SB_FUZZ_CHECK(same_value(&again->entries[i].value, &req->entries[i].value));
	}
	free(buf);
	sb_kop_request_free(again);
	sb_kop_request_free(req);
}

static void fuzz_reply(const uint8_t *p, size_t n)
{
	struct sb_kop_reply *rep, *again;
	void *buf;
	size_t len;

	if (sb_kop_reply_decode(p, n, &rep) != 0)
		return;
	SB_FUZZ_CHECK(rep->n_values <= SB_KOP_ENTRIES_MAX);
	SB_FUZZ_CHECK(!rep->reason || strlen(rep->reason) <= SB_KOP_REASON_MAX);
	SB_FUZZ_CHECK(sb_kop_reply_encode(rep, &buf, &len) == 0);
	SB_FUZZ_CHECK(sb_kop_reply_decode(buf, len, &again) == 0);
	SB_FUZZ_CHECK(again->id == rep->id && again->success == rep->success &&
		      same_text(again->reason, rep->reason) && again->n_values == rep->n_values);
	for (size_t i = 0; i < rep->n_values; i++)
		SB_FUZZ_CHECK(same_value(&again->read_values[i], &rep->read_values[i]));
	free(buf);
	sb_kop_reply_free(again);
	sb_kop_reply_free(rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* Exactly size - 1 bytes, so that ASan sees a read past the document. */
	uint8_t *p = malloc(size - 1 ? size - 1 : 1);
	memcpy(p, data + 1, size - 1);
	if (data[0] % 2)
		fuzz_reply(p, size - 1);
	else
		fuzz_request(p, size - 1);
	free(p);
	return 0;
}

void sb_fuzz_seeds(const char *dir)
{
	static const uint8_t bytes[] = { 1, 2, 3, 4 };
	const struct sb_kop_entry entries[] = {
		{ "jiffies", { .kind = SB_KOP_NONE } },
		{ "0xffff0000", { .kind = SB_KOP_U32, .num = 7 } },
		{ "sym+8", { .kind = SB_KOP_BYTES, .bytes = bytes, .len = sizeof(bytes) } },
		{ "flags", { .kind = SB_KOP_OR_U32, .num = 0x10 } },
	};
	const struct sb_kop_request req = { .id = 42,
					    .mode = SB_KOP_COLD,
					    .direction = SB_KOP_WRITE,
					    .tag = "kop-1",
					    .entries = entries,
					    .n_entries = 4 };
	const struct sb_kop_value values[] = {
		{ .kind = SB_KOP_U64, .num = 1ull << 40 },
		{ .kind = SB_KOP_BYTES, .bytes = bytes, .len = sizeof(bytes) },
	};
	const struct sb_kop_reply ok = {
		.id = 42, .success = true, .read_values = values, .n_values = 2
	};
	const struct sb_kop_reply bad = { .id = 43, .success = false, .reason = "no such symbol" };
	void *buf;
	size_t len;

	if (sb_kop_request_encode(&req, &buf, &len) == 0) {
		sb_fuzz_seed_mode(dir, "request-write", 0, buf, len);
		free(buf);
	}
	if (sb_kop_reply_encode(&ok, &buf, &len) == 0) {
		sb_fuzz_seed_mode(dir, "reply-values", 1, buf, len);
		free(buf);
	}
	if (sb_kop_reply_encode(&bad, &buf, &len) == 0) {
		sb_fuzz_seed_mode(dir, "reply-failed", 1, buf, len);
		free(buf);
	}
}
