/*
 * fuzz_validate.c - the one-pass msgpack validator (sb__msgpack_check),
 * against two oracles: the plain validator it replaced (below, kept as
 * written: one switch per object, every length checked where it is read)
 * and msgpack-c's unpacker. All three must agree on every input: accept
 * exactly one well-formed object, refuse anything else, never read past
 * the input (the buffer is exactly its size, so ASan sees a byte too far).
 *
 * Input: the bytes to validate.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include <msgpack.h>

#include "../../ring/format/msgpack.h"
#include "fuzz.h"

SB_FUZZ_MAIN

void sb_fuzz_init(void)
{
}

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* The oracle: 0 for exactly one well-formed object, else -EINVAL. */
static int plain_check(const uint8_t *p, size_t n)
{
	size_t i = 0;
	uint64_t pending = 1;

	while (pending > 0) {
		if (i >= n)
			return -EINVAL;
		uint8_t t = p[i++];
		uint64_t items = 0, body = 0;
		int lenw = 0, count = 0;

		pending--;
		if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
			continue;
		if (t <= 0x8f)
			items = 2u * (t & 0x0f);
		else if (t <= 0x9f)
			items = t & 0x0f;
		else if (t <= 0xbf)
			body = t & 0x1f;
		else if (t == 0xc4 || t == 0xd9)
			lenw = 1;
		else if (t == 0xc5 || t == 0xda)
			lenw = 2;
		else if (t == 0xc6 || t == 0xdb)
			lenw = 4;
		else if (t >= 0xc7 && t <= 0xc9) {
			lenw = t == 0xc7 ? 1 : t == 0xc8 ? 2 : 4;
			body = 1; /* the ext's type byte */
		} else if (t == 0xca || t == 0xce || t == 0xd2)
			body = 4;
		else if (t == 0xcb || t == 0xcf || t == 0xd3)
			body = 8;
		else if (t == 0xcc || t == 0xd0)
			body = 1;
		else if (t == 0xcd || t == 0xd1)
			body = 2;
		else if (t >= 0xd4 && t <= 0xd8)
			body = 1 + (1u << (t - 0xd4));
		else if (t >= 0xdc && t <= 0xdf) {
			lenw = (t & 1) ? 4 : 2;
			count = t >= 0xde ? 2 : 1;
		} else
			return -EINVAL; /* 0xc1 */
		if (lenw) {
			if (n - i < (size_t)lenw)
				return -EINVAL;
			uint64_t v = be(p + i, lenw);
			i += lenw;
			if (count)
				items = count * v;
			else
				body += v;
		}
		if (body > n - i)
			return -EINVAL;
		i += body;
		if (items > n - i)
			return -EINVAL;
		pending += items;
	}
	return i == n ? 0 : -EINVAL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p = malloc(size ? size : 1);

	memcpy(p, data, size);
	int fast = sb__msgpack_check(p, size);
	int plain = plain_check(p, size);
	SB_FUZZ_CHECK(fast == 0 || fast == -EINVAL);
	SB_FUZZ_CHECK(fast == plain);
	if (fast != 0)
		SB_FUZZ_CHECK(sb__msgpack_error()[0] != '\0');
	if (fast == 0 && size <= 1 << 16) {
		/* msgpack-c parses it as one object; its fixed nesting limit is the only excuse. */
		msgpack_unpacked u;
		size_t off = 0;

		msgpack_unpacked_init(&u);
		msgpack_unpack_return r = msgpack_unpack_next(&u, (const char *)p, size, &off);
		SB_FUZZ_CHECK((r == MSGPACK_UNPACK_SUCCESS && off == size) ||
			      r == MSGPACK_UNPACK_NOMEM_ERROR);
		msgpack_unpacked_destroy(&u);
	}
	free(p);
	return 0;
}

void sb_fuzz_seeds(const char *dir)
{
	/* A scheduler-state-like map: nested maps, arrays, small ints, floats, strings. */
	static const uint8_t cpu[] = { 0x83, 0xa3, 'c',	 'p',  'u',  0x07, 0xa4, 'l',  'o',  'a',
				       'd',  0xcb, 0x3f, 0xf0, 0,    0,	   0,	 0,    0,    0,
				       0xa2, 'r',  'q',	 0x92, 0x93, 0xce, 0,	 1,    0x86, 0xa0,
				       0x78, 0xd1, 0xfc, 0x18, 0x93, 0x01, 0xcc, 0x8b, 0xe0 };
	static const uint8_t containers16[] = { 0xde, 0x00, 0x01, 0xda, 0x00, 0x02, 'k',  'y',
						0xdc, 0x00, 0x02, 0xc4, 0x01, 0xaa, 0xd8, 0x05,
						0,    1,    2,	  3,	4,    5,    6,	  7,
						8,    9,    10,	  11,	12,   13,   14,	  15 };
	static const uint8_t ext[] = { 0x92, 0xc7, 0x02, 0x01, 0xaa, 0xbb, 0xd6, 0xff, 1, 2, 3, 4 };

	sb_fuzz_seed(dir, "cpu-map", cpu, sizeof(cpu));
	sb_fuzz_seed(dir, "containers16", containers16, sizeof(containers16));
	sb_fuzz_seed(dir, "ext", ext, sizeof(ext));
}
