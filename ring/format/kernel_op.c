/*
 * ring/format/kernel_op.c - the msgpack form of kernel-op requests and replies
 * (snapbridge/aux.h has the schema), and the single-block decoded objects.
 *
 * Decoding reads bytes that came from shared memory or another process:
 * sb__msgpack_check() bounds the whole document first, then every field
 * is checked for type and size before it is copied. A decoded object is
 * built in two passes over one plan, the first only sizing the block, so
 * that nothing is allocated for input that fails halfway.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <snapbridge/aux.h>

#include "../error.h"
#include "kernel_op.h"
#include "msgpack.h"

/* ---- checks shared by encoding and decoding ---------------------------------- */

/* 0 when s is 1..max bytes (min 0 when empty_ok). */
static int check_text(const char *what, const char *s, size_t max, bool empty_ok, size_t *len)
{
	if (!s)
		return sb__fail(-EINVAL, "%s is NULL", what);
	*len = strnlen(s, max + 1);
	if (*len == 0 && !empty_ok)
		return sb__fail(-EINVAL, "%s is empty", what);
	if (*len > max)
		return sb__fail(-ENAMETOOLONG, "%s \"%.24s...\" is longer than %zu bytes", what, s,
				max);
	return 0;
}

int sb__kop_check_tag(const char *tag, size_t *len)
{
	return check_text("kernel-op tag", tag, SB_KOP_TAG_MAX, false, len);
}

/*
 * One value's bounds; *bytes adds up the BYTES lengths so that a document
 * that could only end up over SB_KOP_REPLY_MAX is refused before anything
 * is encoded (4096 values of 1 MiB would otherwise be packed first).
 */
static int check_value(const char *what, size_t i, const struct sb_kop_value *v, size_t *bytes)
{
	switch (v->kind) {
	case SB_KOP_NONE:
	case SB_KOP_U64:
		return 0;
	case SB_KOP_U32:
	case SB_KOP_OR_U32:
		if (v->num > UINT32_MAX)
			return sb__fail(-EINVAL, "%s %zu: %llu does not fit a u32", what, i,
					(unsigned long long)v->num);
		return 0;
	case SB_KOP_BYTES:
		if (!v->bytes && v->len)
			return sb__fail(-EINVAL, "%s %zu: %zu bytes at NULL", what, i, v->len);
		if (v->len > SB_KOP_REPLY_MAX - *bytes)
			return sb__fail(-E2BIG,
					"%s %zu: %zu more bytes make the document larger than %u",
					what, i, v->len, SB_KOP_REPLY_MAX);
		*bytes += v->len;
		return 0;
	}
	return sb__fail(-EINVAL, "%s %zu has unknown kind %d", what, i, (int)v->kind);
}

static int check_count(const char *what, const void *items, size_t n)
{
	if (n > SB_KOP_ENTRIES_MAX)
		return sb__fail(-E2BIG, "%zu %s, more than %d", n, what, SB_KOP_ENTRIES_MAX);
	if (n && !items)
		return sb__fail(-EINVAL, "%zu %s at NULL", n, what);
	return 0;
}

/* ---- encoding ------------------------------------------------------------------ */

static void pack_str(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void pack_key(msgpack_packer *pk, const char *key)
{
	pack_str(pk, key, strlen(key));
}

static void pack_value(msgpack_packer *pk, const struct sb_kop_value *v)
{
	static const char *const keys[] = { [SB_KOP_U32] = "u32",
					    [SB_KOP_U64] = "u64",
					    [SB_KOP_BYTES] = "bytes",
					    [SB_KOP_OR_U32] = "or_u32" };

	if (v->kind == SB_KOP_NONE) {
		msgpack_pack_nil(pk);
		return;
	}
	msgpack_pack_map(pk, 1);
	pack_key(pk, keys[v->kind]);
	if (v->kind == SB_KOP_BYTES) {
		msgpack_pack_bin(pk, v->len);
		msgpack_pack_bin_body(pk, v->bytes, v->len);
	} else {
		msgpack_pack_uint64(pk, v->num);
	}
}

int sb_kop_request_encode(const struct sb_kop_request *req, void **buf, size_t *len)
{
	size_t tag_len, tlen;
	int err;

	if (!req || !buf || !len)
		return sb__fail(-EINVAL, "sb_kop_request_encode: NULL argument");
	err = sb__kop_check_tag(req->tag, &tag_len);
	if (err)
		return err;
	if (req->mode != SB_KOP_HOT && req->mode != SB_KOP_COLD)
		return sb__fail(-EINVAL, "kernel-op %s: mode %d is neither hot nor cold", req->tag,
				(int)req->mode);
	if (req->direction != SB_KOP_READ && req->direction != SB_KOP_WRITE)
		return sb__fail(-EINVAL, "kernel-op %s: direction %d is neither read nor write",
				req->tag, (int)req->direction);
	size_t bytes = 0;

	err = check_count("request entries", req->entries, req->n_entries);
	for (size_t i = 0; !err && i < req->n_entries; i++) {
		err = check_text("kernel-op target", req->entries[i].target, SB_KOP_TARGET_MAX,
				 false, &tlen);
		if (!err)
			err = check_value("request entry", i, &req->entries[i].value, &bytes);
	}
	if (err)
		return err;

	struct sb_pack p;
	msgpack_packer *pk = &p.pk;

	sb__pack_init(&p);
	msgpack_pack_map(pk, 5);
	pack_key(pk, "id");
	msgpack_pack_uint64(pk, req->id);
	pack_key(pk, "mode");
	pack_key(pk, req->mode == SB_KOP_HOT ? "hot" : "cold");
	pack_key(pk, "direction");
	pack_key(pk, req->direction == SB_KOP_READ ? "read" : "write");
	pack_key(pk, "tag");
	pack_str(pk, req->tag, tag_len);
	pack_key(pk, "entries");
	msgpack_pack_array(pk, req->n_entries);
	for (size_t i = 0; i < req->n_entries; i++) {
		msgpack_pack_map(pk, 2);
		pack_key(pk, "target");
		pack_key(pk, req->entries[i].target);
		pack_key(pk, "value");
		pack_value(pk, &req->entries[i].value);
	}
	return sb__pack_finish(&p, SB_KOP_REPLY_MAX, "kernel-op request", buf, len);
}

/* Every bound of a reply the caller built (reason, values); nothing encoded. */
static int reply_check(const struct sb_kop_reply *reply)
{
	size_t rlen;
	int err;

	if (!reply)
		return sb__fail(-EINVAL, "kernel-op reply is NULL");
	if (reply->reason) {
		err = check_text("kernel-op reason", reply->reason, SB_KOP_REASON_MAX, true, &rlen);
		if (err)
			return err;
	}
	size_t bytes = 0;

	err = check_count("reply values", reply->read_values, reply->n_values);
	for (size_t i = 0; !err && i < reply->n_values; i++)
		err = check_value("reply value", i, &reply->read_values[i], &bytes);
	return err;
}

int sb_kop_reply_encode(const struct sb_kop_reply *reply, void **buf, size_t *len)
{
	if (!reply || !buf || !len)
		return sb__fail(-EINVAL, "sb_kop_reply_encode: NULL argument");
	int err = reply_check(reply);
	if (err)
		return err;

	struct sb_pack p;
	msgpack_packer *pk = &p.pk;

	sb__pack_init(&p);
	msgpack_pack_map(pk, 4);
	pack_key(pk, "id");
	msgpack_pack_uint64(pk, reply->id);
	pack_key(pk, "success");
	if (reply->success)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	pack_key(pk, "reason");
	if (reply->reason)
		pack_key(pk, reply->reason);
	else
		msgpack_pack_nil(pk);
	pack_key(pk, "read_values");
	msgpack_pack_array(pk, reply->n_values);
	for (size_t i = 0; i < reply->n_values; i++)
		pack_value(pk, &reply->read_values[i]);
	return sb__pack_finish(&p, SB_KOP_REPLY_MAX, "kernel-op reply", buf, len);
}

/* ---- decoding ------------------------------------------------------------------ */

/*
 * A block being planned (p == NULL: only count) or filled. Every piece is
 * carved with take(), in the same order in both passes.
 */
struct blk {
	uint8_t *p;
	size_t used;
};

static void *take(struct blk *b, size_t n, size_t align)
{
	b->used = (b->used + align - 1) & ~(align - 1);
	void *at = b->p ? b->p + b->used : NULL;
	b->used += n;
	return at;
}

static const char *take_str(struct blk *b, const char *s, size_t n)
{
	char *at = take(b, n + 1, 1);

	if (at) {
		memcpy(at, s, n);
		at[n] = '\0';
	}
	return at;
}

static bool key_is(const msgpack_object *k, const char *key)
{
	size_t n = strlen(key);

	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, key, n) == 0;
}

static int bad(const char *what, const char *why)
{
	return sb__fail(-EBADMSG, "%s: %s", what, why);
}

static int get_uint(const char *what, const msgpack_object *o, uint64_t max, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
		return bad(what, "expected an unsigned integer in range");
	*v = o->via.u64;
	return 0;
}

static int get_str(const char *what, const msgpack_object *o, size_t min, size_t max,
		   const char **s, size_t *n)
{
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size < min || o->via.str.size > max)
		return bad(what, "expected a string of the allowed length");
	if (memchr(o->via.str.ptr, '\0', o->via.str.size))
		return bad(what, "a string holds a NUL byte");
	*s = o->via.str.ptr;
	*n = o->via.str.size;
	return 0;
}

/*
 * Walk the string-keyed map o, calling fn for each entry; unknown keys,
 * repeated keys and non-string keys are errors. keys lists the allowed
 * ones (at most 8); *seen gets a bit per key found.
 */
typedef int (*field_fn)(void *ctx, int key, const msgpack_object *v);

static int walk_map(const char *what, const msgpack_object *o, const char *const *keys, int nkeys,
		    field_fn fn, void *ctx, unsigned *seen)
{
	*seen = 0;
	if (o->type != MSGPACK_OBJECT_MAP)
		return bad(what, "expected a map");
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];
		int k = 0;

		while (k < nkeys && !key_is(&kv->key, keys[k]))
			k++;
		if (k == nkeys)
			return bad(what, "unknown or non-string key");
		if (*seen & (1u << k))
			return bad(what, "repeated key");
		*seen |= 1u << k;
		int err = fn(ctx, k, &kv->val);
		if (err)
			return err;
	}
	return 0;
}

/* Value V: nil or a one-key map. Copies bytes into b. */
static int get_value(const msgpack_object *o, struct blk *b, struct sb_kop_value *v)
{
	static const char *const what = "kernel-op value";

	memset(v, 0, sizeof(*v));
	if (o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size != 1)
		return bad(what, "expected nil or a map with one key");
	const msgpack_object *k = &o->via.map.ptr[0].key, *val = &o->via.map.ptr[0].val;

	if (key_is(k, "u32") || key_is(k, "or_u32")) {
		v->kind = key_is(k, "u32") ? SB_KOP_U32 : SB_KOP_OR_U32;
		return get_uint(what, val, UINT32_MAX, &v->num);
	}
	if (key_is(k, "u64")) {
		v->kind = SB_KOP_U64;
		return get_uint(what, val, UINT64_MAX, &v->num);
	}
	if (key_is(k, "bytes")) {
		if (val->type != MSGPACK_OBJECT_BIN)
			return bad(what, "bytes is not bin");
		v->kind = SB_KOP_BYTES;
		v->len = val->via.bin.size;
		uint8_t *at = take(b, v->len, 1);
		if (at && v->len)
			memcpy(at, val->via.bin.ptr, v->len);
		v->bytes = at;
		return 0;
	}
	return bad(what, "unknown kind");
}

/* Parse buf into one msgpack object held by u, after bounding it. */
static int unpack(const char *what, const void *buf, size_t len, msgpack_unpacked *u)
{
	size_t off = 0;

	if (!buf && len)
		return sb__fail(-EINVAL, "%s: %zu bytes at NULL", what, len);
	if (len > SB_KOP_REPLY_MAX)
		return sb__fail(-EBADMSG, "%s: %zu bytes, more than %u", what, len,
				SB_KOP_REPLY_MAX);
	if (sb__msgpack_check(buf, len) != 0)
		return sb__fail(-EBADMSG, "%s is not one msgpack object: %s", what,
				sb__msgpack_error());
	msgpack_unpacked_init(u);
	if (msgpack_unpack_next(u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len) {
		msgpack_unpacked_destroy(u);
		return sb__fail(-EBADMSG, "%s: msgpack-c could not unpack it", what);
	}
	return 0;
}

/* Builds a decoded object in b from o: sizes it when b->p is NULL, fills it otherwise. */
typedef int (*build_fn)(const msgpack_object *o, struct blk *b, void **out);

/* Unpack, size the object (nothing allocated yet), then build it in one block. */
static int decode(const char *what, const void *buf, size_t len, build_fn build, void **out)
{
	msgpack_unpacked u;
	struct blk b = { NULL, 0 };
	void *sized;

	*out = NULL;
	int err = unpack(what, buf, len, &u);
	if (err)
		return err;
	err = build(&u.data, &b, &sized);
	if (!err) {
		b = (struct blk){ malloc(b.used ? b.used : 1), 0 };
		if (!b.p)
			err = sb__fail(-ENOMEM, "out of memory decoding a %s", what);
		else
			err = build(&u.data, &b, out);
		if (err) {
			free(b.p);
			*out = NULL;
		}
	}
	msgpack_unpacked_destroy(&u);
	return err;
}

struct reply_ctx {
	struct blk *b;
	struct sb_kop_reply *r;
	struct sb_kop_value *vals;
};

static int reply_field(void *arg, int key, const msgpack_object *v)
{
	static const char *const what = "kernel-op reply";
	struct reply_ctx *x = arg;
	const char *s = NULL;
	size_t n = 0;
	int err;

	switch (key) {
	case 0:
		return get_uint(what, v, UINT64_MAX, &x->r->id);
	case 1:
		if (v->type != MSGPACK_OBJECT_BOOLEAN)
			return bad(what, "success is not a bool");
		x->r->success = v->via.boolean;
		return 0;
	case 2:
		if (v->type == MSGPACK_OBJECT_NIL)
			return 0;
		err = get_str(what, v, 0, SB_KOP_REASON_MAX, &s, &n);
		if (!err)
			x->r->reason = take_str(x->b, s, n);
		return err;
	default:
		if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > SB_KOP_ENTRIES_MAX)
			return bad(what, "read_values is not an array of at most 4096 values");
		x->r->n_values = v->via.array.size;
		x->vals =
		    take(x->b, sizeof(*x->vals) * x->r->n_values, _Alignof(struct sb_kop_value));
		x->r->read_values = x->vals;
		for (uint32_t i = 0; i < v->via.array.size; i++) {
			struct sb_kop_value val;

			err = get_value(&v->via.array.ptr[i], x->b, &val);
			if (err)
				return err;
			if (x->vals)
				x->vals[i] = val;
		}
		return 0;
	}
}

static int reply_build(const msgpack_object *o, struct blk *b, void **out)
{
	static const char *const keys[] = { "id", "success", "reason", "read_values" };
	struct sb_kop_reply scratch;
	struct sb_kop_reply *r = take(b, sizeof(*r), _Alignof(struct sb_kop_reply));
	struct reply_ctx x = { b, r ? r : &scratch, NULL };
	unsigned seen;

	memset(x.r, 0, sizeof(*x.r));
	int err = walk_map("kernel-op reply", o, keys, 4, reply_field, &x, &seen);
	if (!err && (seen & 3u) != 3u)
		err = bad("kernel-op reply", "id or success is missing");
	*out = r;
	return err;
}

int sb_kop_reply_decode(const void *buf, size_t len, struct sb_kop_reply **out)
{
	if (!out)
		return sb__fail(-EINVAL, "sb_kop_reply_decode: out is NULL");
	return decode("kernel-op reply", buf, len, reply_build, (void **)out);
}

void sb_kop_reply_free(struct sb_kop_reply *reply)
{
	free(reply);
}

struct request_ctx {
	struct blk *b;
	struct sb_kop_request *r;
};

struct entry_ctx {
	struct blk *b;
	struct sb_kop_entry e;
};

static int entry_field(void *arg, int key, const msgpack_object *v)
{
	struct entry_ctx *x = arg;
	const char *s = NULL;
	size_t n = 0;
	int err;

	if (key == 0) {
		err = get_str("kernel-op entry", v, 1, SB_KOP_TARGET_MAX, &s, &n);
		if (!err)
			x->e.target = take_str(x->b, s, n);
		return err;
	}
	return get_value(v, x->b, &x->e.value);
}

static int request_field(void *arg, int key, const msgpack_object *v)
{
	static const char *const what = "kernel-op request";
	struct request_ctx *x = arg;
	const char *s = NULL;
	size_t n = 0;
	int err;

	switch (key) {
	case 0:
		return get_uint(what, v, UINT64_MAX, &x->r->id);
	case 1:
		if (key_is(v, "hot") || key_is(v, "cold")) {
			x->r->mode = key_is(v, "hot") ? SB_KOP_HOT : SB_KOP_COLD;
			return 0;
		}
		return bad(what, "mode is neither \"hot\" nor \"cold\"");
	case 2:
		if (key_is(v, "read") || key_is(v, "write")) {
			x->r->direction = key_is(v, "read") ? SB_KOP_READ : SB_KOP_WRITE;
			return 0;
		}
		return bad(what, "direction is neither \"read\" nor \"write\"");
	case 3:
		err = get_str(what, v, 1, SB_KOP_TAG_MAX, &s, &n);
		if (!err)
			x->r->tag = take_str(x->b, s, n);
		return err;
	default:
		if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > SB_KOP_ENTRIES_MAX)
			return bad(what, "entries is not an array of at most 4096 entries");
		x->r->n_entries = v->via.array.size;
		struct sb_kop_entry *es =
		    take(x->b, sizeof(*es) * x->r->n_entries, _Alignof(struct sb_kop_entry));
		x->r->entries = es;
		for (uint32_t i = 0; i < v->via.array.size; i++) {
			static const char *const keys[] = { "target", "value" };
			struct entry_ctx e = { x->b, { 0 } };
			unsigned seen;

			err = walk_map("kernel-op entry", &v->via.array.ptr[i], keys, 2,
				       entry_field, &e, &seen);
			if (!err && !(seen & 1u))
				err = bad("kernel-op entry", "target is missing");
			if (err)
				return err;
			if (es)
				es[i] = e.e; /* a missing value stays SB_KOP_NONE */
		}
		return 0;
	}
}

static int request_build(const msgpack_object *o, struct blk *b, void **out)
{
	static const char *const keys[] = { "id", "mode", "direction", "tag", "entries" };
	struct sb_kop_request scratch;
	struct sb_kop_request *r = take(b, sizeof(*r), _Alignof(struct sb_kop_request));
	struct request_ctx x = { b, r ? r : &scratch };
	unsigned seen;

	memset(x.r, 0, sizeof(*x.r));
	int err = walk_map("kernel-op request", o, keys, 5, request_field, &x, &seen);
	if (!err && (seen & 0xfu) != 0xfu)
		err = bad("kernel-op request", "id, mode, direction or tag is missing");
	*out = r;
	return err;
}

int sb_kop_request_decode(const void *buf, size_t len, struct sb_kop_request **out)
{
	if (!out)
		return sb__fail(-EINVAL, "sb_kop_request_decode: out is NULL");
	return decode("kernel-op request", buf, len, request_build, (void **)out);
}

void sb_kop_request_free(struct sb_kop_request *req)
{
	free(req);
}

void sb_kop_value_free(struct sb_kop_value *v)
{
	if (!v)
		return;
	if (v->kind == SB_KOP_BYTES)
		free((void *)v->bytes);
	v->bytes = NULL;
	v->len = 0;
}

void sb_kop_log_free(struct sb_kop_log *log)
{
	if (!log)
		return;
	for (size_t i = 0; i < log->count; i++) {
		free(log->items[i].tag);
		sb_kop_reply_free(log->items[i].reply);
	}
	free(log->items);
	log->items = NULL;
	log->count = 0;
}
