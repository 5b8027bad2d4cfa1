/*
 * ring/codec.c - what record payloads contain: a bounds-checking msgpack
 * validator, and the msgpack form of a missing-stats reason,
 *   {"missing": "<Variant>", "reason"|"args": str, "errno": int,
 *    "size": uint, "max": uint}
 * with only the fields the variant has.
 */
#include "codec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "error.h"

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

static const char *const missing_names[] = {
	[SB_MISSING_NO_SCHEDULER_BINARY] = "NoSchedulerBinary",
	[SB_MISSING_NO_SCHEDULER] = "NoScheduler",
	[SB_MISSING_DURING_FREEZE] = "DuringFreeze",
	[SB_MISSING_CANCELLED] = "Cancelled",
	[SB_MISSING_SCHEDULER_ERROR] = "SchedulerError",
	[SB_MISSING_MISSING_RESP] = "MissingResp",
	[SB_MISSING_REQUEST_TOO_LARGE] = "RequestTooLarge",
	[SB_MISSING_RESPONSE_TOO_LARGE] = "ResponseTooLarge",
	[SB_MISSING_MUTEX_POISONED] = "MutexPoisoned",
};

const char *sb_missing_kind_name(enum sb_missing_kind kind)
{
	if (kind < SB_MISSING_NO_SCHEDULER_BINARY || kind > SB_MISSING_MUTEX_POISONED)
		return "Unknown";
	return missing_names[kind];
}

/* Which text field a variant carries, if any. */
static const char *text_key(enum sb_missing_kind kind)
{
	switch (kind) {
	case SB_MISSING_NO_SCHEDULER:
		return "reason";
	case SB_MISSING_SCHEDULER_ERROR:
	case SB_MISSING_MISSING_RESP:
		return "args";
	default:
		return NULL;
	}
}

static bool has_sizes(enum sb_missing_kind kind)
{
	return kind == SB_MISSING_REQUEST_TOO_LARGE || kind == SB_MISSING_RESPONSE_TOO_LARGE;
}

struct fixed_buf {
	uint8_t *p;
	size_t cap;
	size_t len;
};

static int fixed_write(void *data, const char *buf, size_t len)
{
	struct fixed_buf *fb = data;

	if (len > fb->cap - fb->len)
		return -1;
	memcpy(fb->p + fb->len, buf, len);
	fb->len += len;
	return 0;
}

static void pack_cstr(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

int sb__missing_check(const struct sb_missing *m)
{
	if (m->kind < SB_MISSING_NO_SCHEDULER_BINARY || m->kind > SB_MISSING_MUTEX_POISONED)
		return sb__fail(-EINVAL, "unknown missing-stats kind %d", (int)m->kind);
	if (text_key(m->kind) && m->text && strnlen(m->text, SB_REASON_MAX + 1) > SB_REASON_MAX)
		return sb__fail(-ENAMETOOLONG, "missing-stats %s text is over %d bytes",
				sb_missing_kind_name(m->kind), SB_REASON_MAX);
	return 0;
}

int sb__missing_encode(const struct sb_missing *m, uint8_t *out, size_t cap, size_t *len)
{
	struct fixed_buf fb = { .p = out, .cap = cap };
	msgpack_packer pk;
	const char *key = text_key(m->kind);
	const char *name = sb_missing_kind_name(m->kind);
	int err = sb__missing_check(m);

	if (err)
		return err;
	msgpack_packer_init(&pk, &fb, fixed_write);
	msgpack_pack_map(&pk, 1 + (key ? 1 : 0) + (m->kind == SB_MISSING_SCHEDULER_ERROR) +
				  (has_sizes(m->kind) ? 2 : 0));
	pack_cstr(&pk, "missing", 7);
	pack_cstr(&pk, name, strlen(name));
	if (m->kind == SB_MISSING_SCHEDULER_ERROR) {
		pack_cstr(&pk, "errno", 5);
		msgpack_pack_int32(&pk, m->err);
	}
	if (key) {
		const char *text = m->text ? m->text : "";
		pack_cstr(&pk, key, strlen(key));
		pack_cstr(&pk, text, strlen(text));
	}
	if (has_sizes(m->kind)) {
		pack_cstr(&pk, "size", 4);
		msgpack_pack_uint64(&pk, m->size);
		pack_cstr(&pk, "max", 3);
		msgpack_pack_uint64(&pk, m->max);
	}
	*len = fb.len;
	return 0;
}

static bool key_is(const msgpack_object_kv *kv, const char *key)
{
	size_t n = strlen(key);

	return kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == n &&
	       memcmp(kv->key.via.str.ptr, key, n) == 0;
}

static bool as_u64(const msgpack_object *o, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return false;
	*v = o->via.u64;
	return true;
}

int sb__missing_decode(const void *buf, size_t len, struct sb_missing *m, char *text)
{
	msgpack_unpacked u;
	size_t off = 0;
	int err = -EBADMSG;

	memset(m, 0, sizeof(*m));
	/*
	 * msgpack-c reserves memory for a container's declared count before it
	 * reads the items: check the bytes (and their counts) first.
	 */
	if (len > SB_MISSING_ENC_MAX || sb__msgpack_check(buf, len) != 0)
		return sb__fail(
		    -EBADMSG, "missing-stats reason is not a bounded msgpack map (%zu bytes)", len);
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len ||
	    u.data.type != MSGPACK_OBJECT_MAP) {
		sb__fail(err, "missing-stats reason is not one msgpack map");
		goto out;
	}
	const msgpack_object_map *map = &u.data.via.map;
	for (uint32_t i = 0; i < map->size; i++) {
		const msgpack_object_kv *kv = &map->ptr[i];
		const msgpack_object *v = &kv->val;

		if (key_is(kv, "missing") && v->type == MSGPACK_OBJECT_STR) {
			for (int k = SB_MISSING_NO_SCHEDULER_BINARY; k <= SB_MISSING_MUTEX_POISONED;
			     k++) {
				if (strlen(missing_names[k]) == v->via.str.size &&
				    memcmp(missing_names[k], v->via.str.ptr, v->via.str.size) == 0)
					m->kind = (enum sb_missing_kind)k;
			}
		} else if ((key_is(kv, "reason") || key_is(kv, "args")) &&
			   v->type == MSGPACK_OBJECT_STR && v->via.str.size <= SB_REASON_MAX) {
			memcpy(text, v->via.str.ptr, v->via.str.size);
			text[v->via.str.size] = '\0';
			m->text = text;
		} else if (key_is(kv, "errno") && (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
						   v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)) {
			m->err = (int32_t)v->via.i64;
		} else if (key_is(kv, "size")) {
			as_u64(v, &m->size);
		} else if (key_is(kv, "max")) {
			as_u64(v, &m->max);
		}
	}
	if (m->kind == 0) {
		sb__fail(err, "missing-stats reason names no known variant");
		goto out;
	}
	/* Only the fields the variant has (sb_missing's contract); a writer stores no others. */
	if (!text_key(m->kind))
		m->text = NULL;
	if (m->kind != SB_MISSING_SCHEDULER_ERROR)
		m->err = 0;
	if (!has_sizes(m->kind))
		m->size = m->max = 0;
	if (text_key(m->kind) && !m->text) {
		text[0] = '\0';
		m->text = text;
	}
	err = 0;
out:
	msgpack_unpacked_destroy(&u);
	return err;
}
