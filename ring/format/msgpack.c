/*
 * ring/format/msgpack.c - msgpack as snapbridge checks and writes it: the
 * bounds-checking validator (and its public form, sb_msgpack_check), and
 * packing into a buffer that remembers a failed write.
 */
#include "msgpack.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>
#include <snapbridge/types.h>

#include "../error.h"

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static _Thread_local char msgpack_error[160];

const char *sb__msgpack_error(void)
{
	return msgpack_error;
}

__attribute__((format(printf, 1, 2))) static int bad_msgpack(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msgpack_error, sizeof(msgpack_error), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/*
 * For the type bytes 0xc0..0xdf: the bytes the whole object takes when
 * the type byte alone says (nil, bool, numbers, fixext), or 0 when a
 * length or count follows it (bin, str, ext, array, map) or it is the
 * reserved 0xc1.
 */
static const uint8_t fixed_size[32] = {
	[0xc0 - 0xc0] = 1, [0xc2 - 0xc0] = 1, [0xc3 - 0xc0] = 1, /* nil, false, true */
	[0xca - 0xc0] = 5, [0xcb - 0xc0] = 9,			  /* float 32, 64 */
	[0xcc - 0xc0] = 2, [0xcd - 0xc0] = 3, [0xce - 0xc0] = 5, [0xcf - 0xc0] = 9, /* uint */
	[0xd0 - 0xc0] = 2, [0xd1 - 0xc0] = 3, [0xd2 - 0xc0] = 5, [0xd3 - 0xc0] = 9, /* int */
	[0xd4 - 0xc0] = 3, [0xd5 - 0xc0] = 4, [0xd6 - 0xc0] = 6, [0xd7 - 0xc0] = 10,
	[0xd8 - 0xc0] = 18, /* fixext 1..16 */
};

/*
 * The types with a length or count field: bin, str, ext, array, map, at
 * p[i]. Returns the position after the object's header and body (for a
 * container, after its header, with its item count in *items), or
 * SIZE_MAX with the error set. Out of line and by value: the hot loop's
 * position and count stay in registers.
 */
static size_t sized(const uint8_t *p, size_t n, size_t i, uint64_t *items)
{
	uint8_t t = p[i];
	int w;

	switch (t) {
	case 0xc4: /* bin 8 */
	case 0xc7: /* ext 8 */
	case 0xd9: /* str 8 */
		w = 1;
		break;
	case 0xc5:
	case 0xc8:
	case 0xda:
	case 0xdc: /* array 16 */
	case 0xde: /* map 16 */
		w = 2;
		break;
	case 0xc6:
	case 0xc9:
	case 0xdb:
	case 0xdd:
	case 0xdf:
		w = 4;
		break;
	default:
		bad_msgpack("type byte 0x%02x at %zu is reserved", t, i);
		return SIZE_MAX;
	}
	if (n - i - 1 < (size_t)w) {
		bad_msgpack("length field truncated at %zu", i + 1);
		return SIZE_MAX;
	}
	uint64_t v = be(p + i + 1, w);
	i += 1 + (size_t)w;
	*items = 0;
	if (t >= 0xdc) {
		v = t >= 0xde ? 2 * v : v;
		/* Every object takes at least one byte: a count beyond that is a lie. */
		if (v > n - i) {
			bad_msgpack("container claims %llu items, %zu bytes remain",
				    (unsigned long long)v, n - i);
			return SIZE_MAX;
		}
		*items = v;
		return i;
	}
	v += t >= 0xc7 && t <= 0xc9; /* an ext's type byte */
	if (v > n - i) {
		bad_msgpack("value at %zu claims %llu bytes, %zu remain", i, (unsigned long long)v,
			    n - i);
		return SIZE_MAX;
	}
	return i + (size_t)v;
}

/*
 * One pass, one step per object; the commonest types first, each with a
 * constant step where the type byte says it (so a predicted branch does
 * not wait for the byte), a string's step from its type byte. A step may
 * overshoot the end: the next iteration or the final check sees it.
 */
int sb__msgpack_check(const void *buf, size_t n)
{
	const uint8_t *p = buf;
	size_t i = 0;
	uint64_t pending = 1; /* objects still to read */

	do {
		if (i >= n)
			return bad_msgpack("truncated: %llu more objects expected after its %zu bytes",
					   (unsigned long long)pending, n);
		uint8_t t = p[i];
		if (t < 0x80 || t >= 0xe0) { /* positive and negative fixint */
			i++;
		} else if (t >= 0xa0 && t < 0xc0) { /* fixstr */
			i += 1 + (size_t)(t & 0x1f);
		} else if (t < 0xa0) { /* fixmap, fixarray */
			i++;
			pending += t < 0x90 ? 2u * (t & 0x0f) : t & 0x0fu;
		} else if (fixed_size[t - 0xc0]) {
			i += fixed_size[t - 0xc0];
		} else {
			uint64_t items;
			i = sized(p, n, i, &items);
			if (i == SIZE_MAX)
				return -EINVAL;
			pending += items;
		}
	} while (--pending > 0);
	if (i > n)
		return bad_msgpack("truncated: its last value ends %zu bytes past the end", i - n);
	if (i != n)
		return bad_msgpack("%zu bytes follow it", n - i);
	return 0;
}

int sb_msgpack_check(const void *buf, size_t len)
{
	if (!buf && len)
		return sb__fail(-EINVAL, "sb_msgpack_check: NULL buffer");
	if (sb__msgpack_check(buf, len) != 0)
		return sb__fail(-EBADMSG, "not one well-formed msgpack object: %s",
				sb__msgpack_error());
	return 0;
}

/* ---- packing ---------------------------------------------------------------------- */

/* msgpack-c's sbuffer writer, remembering the first failure (out of memory). */
static int checked_write(void *data, const char *buf, size_t len)
{
	struct sb_pack *p = data;

	if (!p->failed && msgpack_sbuffer_write(&p->sb, buf, len) != 0)
		p->failed = true;
	return p->failed ? -1 : 0;
}

void sb__pack_init(struct sb_pack *p)
{
	msgpack_sbuffer_init(&p->sb);
	msgpack_packer_init(&p->pk, p, checked_write);
	p->failed = false;
}

int sb__pack_finish(struct sb_pack *p, size_t max, const char *what, void **buf, size_t *len)
{
	if (p->failed || !p->sb.data) {
		msgpack_sbuffer_destroy(&p->sb);
		return sb__fail(-ENOMEM, "out of memory encoding a %s", what);
	}
	if (p->sb.size > max) {
		size_t n = p->sb.size;

		msgpack_sbuffer_destroy(&p->sb);
		return sb__fail(-E2BIG, "the encoded %s is %zu bytes, more than %zu", what, n, max);
	}
	*len = p->sb.size;
	*buf = msgpack_sbuffer_release(&p->sb);
	return 0;
}
