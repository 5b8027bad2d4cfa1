/*
 * ring/format/missing_stats.c - the msgpack form of a missing-stats
 * reason, which the library writes and reads back itself:
 *   {"missing": "<Variant>", "reason"|"args": str, "errno": int,
 *    "size": uint, "max": uint}
 * with only the fields the variant has.
 */
#include "missing_stats.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "../error.h"
#include "msgpack.h"

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
