/*
 * consumers/tool/mpjson.c - msgpack to JSON, exactly.
 *
 * JSON cannot hold everything msgpack can, so the rules (docs/CLI.md):
 *   nil, bool, array     null, true/false, array
 *   int in [-2^63, 2^63) a JSON number, every digit
 *   uint above 2^63-1    a string of its decimal digits ("18446744073709551615"):
 *                        jansson's integers are long long, and a double would round
 *   float32 / float64    a number printed with 17 significant digits, which
 *                        reads back as the same double; NaN and the infinities
 *                        (no JSON number) as the strings "NaN", "Infinity", "-Infinity"
 *   str                  a string (jansson escapes it per RFC 8259); bytes that are
 *                        not UTF-8 as a base64 string, like bin
 *   bin                  a base64 string (RFC 4648, padded)
 *   ext                  {"ext": type, "data": base64}
 *   map                  an object when every key is a UTF-8 string without a NUL
 *                        and no key repeats; otherwise an array of [key, value]
 *                        pairs in msgpack order, keys converted by these same rules
 * Nesting is bounded by msgpack-c's unpacker (it refuses deeper input).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tool.h"

static json_t *text_or_base64(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n); /* NULL when s is not valid UTF-8 */

	return j ? j : sb_tool_base64_json(s, n);
}

static json_t *convert(const msgpack_object *o);

static bool object_keys_ok(const msgpack_object_map *m)
{
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object *k = &m->ptr[i].key;

		/*
		 * A key holding a NUL is valid JSON ("\u0000") but many readers,
		 * jansson among them, refuse it as an object key: pair form.
		 */
		if (k->type != MSGPACK_OBJECT_STR ||
		    (k->via.str.size && memchr(k->via.str.ptr, '\0', k->via.str.size)))
			return false;
	}
	return true;
}

static json_t *convert_map(const msgpack_object_map *m)
{
	json_t *obj = NULL;

	if (object_keys_ok(m)) {
		obj = json_object();
		if (!obj)
			return NULL;
		for (uint32_t i = 0; i < m->size; i++) {
			const msgpack_object_str *k = &m->ptr[i].key.via.str;
			json_t *v;

			json_t *probe = json_stringn(k->ptr, k->size); /* NULL: not UTF-8 */

			json_decref(probe);
			/* A key that is not UTF-8, or a repeated key: the pair form below. */
			if (!probe || json_object_getn(obj, k->ptr, k->size)) {
				json_decref(obj);
				obj = NULL;
				break;
			}
			v = convert(&m->ptr[i].val);
			if (!v || json_object_setn_new(obj, k->ptr, k->size, v) != 0) {
				json_decref(obj);
				return NULL;
			}
		}
		if (obj)
			return obj;
	}
	json_t *pairs = json_array();
	if (!pairs)
		return NULL;
	for (uint32_t i = 0; i < m->size; i++) {
		json_t *k = convert(&m->ptr[i].key), *v = convert(&m->ptr[i].val);
		json_t *pair = k && v ? json_array() : NULL;

		if (!pair) {
			json_decref(k);
			json_decref(v);
			json_decref(pairs);
			return NULL;
		}
		/* The _new calls take their value's reference even when they fail. */
		int bad = json_array_append_new(pair, k);
		bad |= json_array_append_new(pair, v);
		if (bad || json_array_append_new(pairs, pair) != 0) {
			if (bad)
				json_decref(pair);
			json_decref(pairs);
			return NULL;
		}
	}
	return pairs;
}

static json_t *convert_float(double d)
{
	if (isnan(d))
		return json_string("NaN");
	if (isinf(d))
		return json_string(d > 0 ? "Infinity" : "-Infinity");
	return json_real(d);
}

static json_t *convert(const msgpack_object *o)
{
	char digits[24];

	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 <= (uint64_t)INT64_MAX)
			return json_integer((json_int_t)o->via.u64);
		snprintf(digits, sizeof(digits), "%llu", (unsigned long long)o->via.u64);
		return json_string(digits);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return convert_float(o->via.f64);
	case MSGPACK_OBJECT_STR:
		return text_or_base64(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN:
		return sb_tool_base64_json(o->via.bin.ptr, o->via.bin.size);
	case MSGPACK_OBJECT_EXT: {
		json_t *data = sb_tool_base64_json(o->via.ext.ptr, o->via.ext.size);

		return data ? json_pack("{s:i,s:o}", "ext", (int)o->via.ext.type, "data", data)
			    : NULL;
	}
	case MSGPACK_OBJECT_ARRAY: {
		json_t *a = json_array();

		for (uint32_t i = 0; a && i < o->via.array.size; i++) {
			json_t *v = convert(&o->via.array.ptr[i]);

			if (!v || json_array_append_new(a, v) != 0) {
				json_decref(a);
				a = NULL;
			}
		}
		return a;
	}
	case MSGPACK_OBJECT_MAP:
		return convert_map(&o->via.map);
	}
	return NULL;
}

json_t *sb_tool_text_json(const char *s, size_t n)
{
	return text_or_base64(s, n);
}

int sb_mp_to_json(const void *buf, size_t len, json_t **out, char *err, size_t errlen)
{
	msgpack_unpacked u;
	size_t off = 0;
	int ret;

	*out = NULL;
	/*
	 * Bound the document first: msgpack-c sizes its allocations from the
	 * counts in the header, so a hostile "2^32 elements" in a few bytes
	 * would ask for gigabytes. The library's validator checks every count
	 * against the bytes that follow, without allocating.
	 */
	if (sb_msgpack_check(buf, len) != 0) {
		snprintf(err, errlen, "%s", sb_last_error());
		return -EBADMSG;
	}
	msgpack_unpacked_init(&u);
	ret = msgpack_unpack_next(&u, buf, len, &off);
	if (ret != MSGPACK_UNPACK_SUCCESS || off != len) {
		/*
		 * msgpack-c also says NOMEM for nesting deeper than its 32-level
		 * stack and for counts no memory could hold: name both.
		 */
		snprintf(err, errlen, "%s",
			 ret == MSGPACK_UNPACK_SUCCESS ? "trailing bytes after one msgpack object"
			 : ret == MSGPACK_UNPACK_NOMEM_ERROR
			     ? "msgpack nested deeper than 32 levels, or too large to decode"
			     : "not one well-formed msgpack object");
		msgpack_unpacked_destroy(&u);
		return ret == MSGPACK_UNPACK_NOMEM_ERROR ? -ENOMEM : -EBADMSG;
	}
	*out = convert(&u.data);
	msgpack_unpacked_destroy(&u);
	if (!*out) {
		snprintf(err, errlen, "out of memory converting msgpack to JSON");
		return -ENOMEM;
	}
	return 0;
}
