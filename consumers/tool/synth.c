/*
 * consumers/tool/synth.c - the synthetic reports `snapbridge coordinator`
 * stores, and their check (`drain --verify`, the demo's consumers).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill_pattern(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed;

	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = splitmix(&x);
		size_t k = n - i < 8 ? n - i : 8;

		memcpy(p + i, &v, k);
	}
}

uint64_t sb_synth_fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* A seed per capture that spreads over all 64 bits (some above INT64_MAX). */
static uint64_t seed_of(uint64_t seq)
{
	uint64_t x = seq;

	return splitmix(&x);
}

int sb_synth_report(msgpack_sbuffer *sb, uint64_t seq, const char *tag, uint64_t stored_ns,
		    size_t payload_bytes)
{
	static uint8_t *scratch;
	static size_t scratch_cap;
	msgpack_packer pk;
	uint64_t seed = seed_of(seq);

	if (scratch_cap < payload_bytes) {
		uint8_t *p = realloc(scratch, payload_bytes);

		if (!p)
			return -ENOMEM;
		scratch = p;
		scratch_cap = payload_bytes;
	}
	fill_pattern(scratch, payload_bytes, seed);
	msgpack_sbuffer_clear(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 6);
	msgpack_pack_str_with_body(&pk, "seq", 3);
	msgpack_pack_uint64(&pk, seq);
	msgpack_pack_str_with_body(&pk, "tag", 3);
	msgpack_pack_str_with_body(&pk, tag, strlen(tag));
	msgpack_pack_str_with_body(&pk, "stored_ns", 9);
	msgpack_pack_uint64(&pk, stored_ns);
	msgpack_pack_str_with_body(&pk, "seed", 4);
	msgpack_pack_uint64(&pk, seed);
	msgpack_pack_str_with_body(&pk, "pattern", 7);
	msgpack_pack_bin_with_body(&pk, scratch, payload_bytes);
	msgpack_pack_str_with_body(&pk, "checksum", 8);
	msgpack_pack_uint64(&pk, sb_synth_fnv1a(scratch, payload_bytes));
	return 0;
}

static bool key_is(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);

	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, name, n) == 0;
}

int sb_synth_check(const void *report, size_t len, struct sb_synth_info *info, char *why,
		   size_t whylen)
{
	msgpack_unpacked u;
	size_t off = 0;
	const msgpack_object_bin *pattern = NULL;
	unsigned have = 0;
	int err = -EBADMSG;

	memset(info, 0, sizeof(*info));
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, report, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len ||
	    u.data.type != MSGPACK_OBJECT_MAP) {
		snprintf(why, whylen, "not a msgpack map");
		goto out;
	}
	for (uint32_t i = 0; i < u.data.via.map.size; i++) {
		const msgpack_object *k = &u.data.via.map.ptr[i].key;
		const msgpack_object *v = &u.data.via.map.ptr[i].val;
		bool uint = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER;

		if (key_is(k, "seq") && uint)
			info->seq = v->via.u64, have |= 1;
		else if (key_is(k, "stored_ns") && uint)
			info->stored_ns = v->via.u64, have |= 2;
		else if (key_is(k, "seed") && uint)
			info->seed = v->via.u64, have |= 4;
		else if (key_is(k, "checksum") && uint)
			info->checksum = v->via.u64, have |= 8;
		else if (key_is(k, "pattern") && v->type == MSGPACK_OBJECT_BIN)
			pattern = &v->via.bin, have |= 16;
	}
	if (have != 31) {
		snprintf(why, whylen,
			 "not a synthetic report (seq, stored_ns, seed, pattern or "
			 "checksum missing)");
		goto out;
	}
	if (sb_synth_fnv1a(pattern->ptr, pattern->size) != info->checksum) {
		snprintf(why, whylen, "checksum mismatch in report seq %llu",
			 (unsigned long long)info->seq);
		goto out;
	}
	if (info->seed != seed_of(info->seq)) {
		snprintf(why, whylen, "seed does not belong to report seq %llu",
			 (unsigned long long)info->seq);
		goto out;
	}
	uint8_t *want = malloc(pattern->size ? pattern->size : 1);
	if (!want) {
		snprintf(why, whylen, "out of memory");
		err = -ENOMEM;
		goto out;
	}
	fill_pattern(want, pattern->size, info->seed);
	bool same = memcmp(want, pattern->ptr, pattern->size) == 0;
	free(want);
	if (!same) {
		snprintf(why, whylen, "pattern bytes differ from the seed's in report seq %llu",
			 (unsigned long long)info->seq);
		goto out;
	}
	err = 0;
out:
	msgpack_unpacked_destroy(&u);
	return err;
}
