/*
 * test_cli_json - the tool's msgpack to JSON rules (consumers/tool/mpjson.c,
 * docs/CLI.md): exact integers, escaped strings, base64 bytes, maps whose
 * keys JSON cannot hold, floats that read back as the same double.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "tool.h"

/* Pack with fn, convert, and return the compact JSON text (caller frees). */
static char *to_json(void (*fn)(msgpack_packer *))
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	json_t *j = NULL;
	char err[128];

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	fn(&pk);
	cr_assert_eq(sb_mp_to_json(sb.data, sb.size, &j, err, sizeof(err)), 0, "%s", err);
	msgpack_sbuffer_destroy(&sb);
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	return s;
}

static void pack_u64_max(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_uint64(pk, UINT64_MAX);
	msgpack_pack_uint64(pk, (uint64_t)INT64_MAX);
	msgpack_pack_int64(pk, INT64_MIN);
}

Test(cli_json, integers_are_exact_and_uint64_above_int64_max_is_a_decimal_string)
{
	char *s = to_json(pack_u64_max);

	cr_assert_str_eq(s, "[\"18446744073709551615\",9223372036854775807,-9223372036854775808]");
	free(s);
}

static void pack_strings(msgpack_packer *pk)
{
	static const char weird[] = "q\"b\\n\n\t\x01 \xc3\xa9 \xf0\x9f\x98\x80";

	msgpack_pack_array(pk, 2);
	msgpack_pack_str_with_body(pk, weird, sizeof(weird) - 1);
	msgpack_pack_str_with_body(pk, "a\0b", 3);
}

Test(cli_json, strings_are_escaped_per_rfc8259_and_read_back_byte_for_byte)
{
	static const char weird[] = "q\"b\\n\n\t\x01 \xc3\xa9 \xf0\x9f\x98\x80";
	char *s = to_json(pack_strings);
	json_t *back = json_loads(s, JSON_ALLOW_NUL, NULL);

	cr_assert_not_null(back, "%s", s);
	cr_assert_str_eq(json_string_value(json_array_get(back, 0)), weird);
	cr_assert_eq(json_string_length(json_array_get(back, 1)), 3);
	cr_assert_eq(memcmp(json_string_value(json_array_get(back, 1)), "a\0b", 3), 0);
	cr_assert_not_null(strstr(s, "\\u0001"), "control characters are escaped: %s", s);
	json_decref(back);
	free(s);
}

static void pack_bytes(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 4);
	msgpack_pack_bin_with_body(pk, "\x00\xff\x10", 3);
	msgpack_pack_bin_with_body(pk, "", 0);
	msgpack_pack_ext_with_body(pk, "hi", 2, 7);
	msgpack_pack_str_with_body(pk, "\xff\xfe", 2); /* not UTF-8 */
}

Test(cli_json, bin_ext_and_non_utf8_strings_become_base64)
{
	char *s = to_json(pack_bytes);

	cr_assert_str_eq(s, "[\"AP8Q\",\"\",{\"ext\":7,\"data\":\"aGk=\"},\"//4=\"]");
	free(s);
}

static void pack_maps(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_map(pk, 2); /* integer keys */
	msgpack_pack_int(pk, 1);
	msgpack_pack_str_with_body(pk, "one", 3);
	msgpack_pack_str_with_body(pk, "k", 1);
	msgpack_pack_nil(pk);
	msgpack_pack_map(pk, 2); /* a repeated key */
	msgpack_pack_str_with_body(pk, "k", 1);
	msgpack_pack_int(pk, 1);
	msgpack_pack_str_with_body(pk, "k", 1);
	msgpack_pack_int(pk, 2);
	msgpack_pack_map(pk, 2); /* plain */
	msgpack_pack_str_with_body(pk, "b", 1);
	msgpack_pack_true(pk);
	msgpack_pack_str_with_body(pk, "a", 1);
	msgpack_pack_false(pk);
}

Test(cli_json, maps_with_non_string_or_repeated_keys_become_key_value_pairs)
{
	char *s = to_json(pack_maps);

	cr_assert_str_eq(s, "[[[1,\"one\"],[\"k\",null]],[[\"k\",1],[\"k\",2]],"
			    "{\"b\":true,\"a\":false}]");
	free(s);
}

static void pack_floats(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 5);
	msgpack_pack_double(pk, 0.1);
	msgpack_pack_float(pk, 0.1f);
	msgpack_pack_double(pk, NAN);
	msgpack_pack_double(pk, INFINITY);
	msgpack_pack_double(pk, -INFINITY);
}

Test(cli_json, floats_read_back_as_the_same_double_and_non_finite_ones_are_named)
{
	char *s = to_json(pack_floats);
	json_t *back = json_loads(s, 0, NULL);

	cr_assert_not_null(back, "%s", s);
	cr_assert_eq(json_real_value(json_array_get(back, 0)), 0.1);
	cr_assert_eq(json_real_value(json_array_get(back, 1)), (double)0.1f);
	cr_assert_str_eq(json_string_value(json_array_get(back, 2)), "NaN");
	cr_assert_str_eq(json_string_value(json_array_get(back, 3)), "Infinity");
	cr_assert_str_eq(json_string_value(json_array_get(back, 4)), "-Infinity");
	json_decref(back);
	free(s);
}

Test(cli_json, bytes_that_are_not_one_msgpack_object_are_refused)
{
	static const uint8_t two[] = { 0x01, 0x02 }; /* two objects */
	static const uint8_t cut[] = { 0x92, 0x01 }; /* an array missing an item */
	static const uint8_t bad[] = { 0xc1 };	     /* the never-used byte */
	json_t *j = NULL;
	char err[128];

	cr_assert_eq(sb_mp_to_json(two, sizeof(two), &j, err, sizeof(err)), -EBADMSG);
	cr_assert_null(j);
	cr_assert_eq(sb_mp_to_json(cut, sizeof(cut), &j, err, sizeof(err)), -EBADMSG);
	cr_assert_eq(sb_mp_to_json(bad, sizeof(bad), &j, err, sizeof(err)), -EBADMSG);
	cr_assert(strlen(err) > 0);
}

/* Regressions of what fuzz_mpjson found (tests/fuzz/). */

Test(cli_json, a_count_larger_than_its_bytes_is_refused_before_anything_is_allocated)
{
	/* array32 and map32 claiming 2^32-1 elements, in five bytes. */
	static const uint8_t arr[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t map[] = { 0xdf, 0xff, 0xff, 0xff, 0xff };
	json_t *j = NULL;
	char err[160];

	cr_assert_eq(sb_mp_to_json(arr, sizeof(arr), &j, err, sizeof(err)), -EBADMSG);
	cr_assert_null(j);
	cr_assert_eq(sb_mp_to_json(map, sizeof(map), &j, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "not one well-formed"), "%s", err);
}

static void pack_nul_and_empty_keys(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	msgpack_pack_map(pk, 1);
	msgpack_pack_str_with_body(pk, "a\0b", 3);
	msgpack_pack_int(pk, 1);
	msgpack_pack_map(pk, 1);
	msgpack_pack_str_with_body(pk, "", 0);
	msgpack_pack_int(pk, 2);
}

Test(cli_json, a_key_holding_a_nul_takes_the_pair_form_and_an_empty_key_stays_a_key)
{
	char *s = to_json(pack_nul_and_empty_keys);
	json_error_t jerr;

	cr_assert_str_eq(s, "[[[\"a\\u0000b\",1]],{\"\":2}]");
	json_t *back = json_loads(s, JSON_ALLOW_NUL, &jerr);
	cr_assert_not_null(back, "jansson reads it back: %s", jerr.text);
	json_decref(back);
	free(s);
}
