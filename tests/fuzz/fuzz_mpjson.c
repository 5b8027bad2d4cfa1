/*
 * fuzz_mpjson.c - the tool's msgpack-to-JSON conversion (consumers/tool/
 * mpjson.c) on hostile bytes: what `snapbridge drain` does with every
 * report, stats document and kernel-op reply it reads from a region. A
 * conversion either fails with a message, or yields JSON that jansson
 * writes (ASCII-escaped, as the tool prints it) and reads back.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <string.h>

#include <msgpack.h>

#include "../../consumers/tool/tool.h"
#include "fuzz.h"

SB_FUZZ_MAIN

void sb_fuzz_init(void)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = NULL;
	char err[160] = "";
	int rc = sb_mp_to_json(data, size, &j, err, sizeof(err));

	if (rc != 0) {
		SB_FUZZ_CHECK(!j && err[0] != '\0');
		return 0;
	}
	SB_FUZZ_CHECK(j != NULL);
	char *text = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
	SB_FUZZ_CHECK(text != NULL);
	/* RFC 8259 escapes below 0x20; JSON_ENSURE_ASCII escapes above 0x7f. */
	for (const char *c = text; *c; c++)
		SB_FUZZ_CHECK((unsigned char)*c >= 0x20 && (unsigned char)*c <= 0x7f);
	json_error_t jerr;
	/* NUL in a string is valid JSON ("\u0000"); jansson reads it only when asked. */
	json_t *back = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	SB_FUZZ_CHECK(back != NULL);
	json_decref(back);
	free(text);
	json_decref(j);
	return 0;
}

static void pack_seed(const char *dir, const char *name, void (*fill)(msgpack_packer *pk))
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	fill(&pk);
	sb_fuzz_seed(dir, name, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
}

static void report(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 4);
	msgpack_pack_str_with_body(pk, "seq", 3);
	msgpack_pack_uint64(pk, UINT64_MAX);
	msgpack_pack_str_with_body(pk, "tag\n\"x\"", 8);
	msgpack_pack_str_with_body(pk, "\xc3\xa9t\xc3\xa9", 5);
	msgpack_pack_str_with_body(pk, "load", 4);
	msgpack_pack_double(pk, 0.1);
	msgpack_pack_str_with_body(pk, "bytes", 5);
	msgpack_pack_bin_with_body(pk, "\x00\x01\xff", 3);
}

static void odd_keys(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	msgpack_pack_int64(pk, -1);
	msgpack_pack_nil(pk);
	msgpack_pack_str_with_body(pk, "\xff\xfe", 2); /* not UTF-8 */
	msgpack_pack_array(pk, 2);
	msgpack_pack_float(pk, 1.5f);
	msgpack_pack_ext_with_body(pk, "ab", 2, 7);
	msgpack_pack_str_with_body(pk, "k", 1);
	msgpack_pack_true(pk);
}

static void deep(msgpack_packer *pk)
{
	for (int i = 0; i < 40; i++)
		msgpack_pack_array(pk, 1);
	msgpack_pack_nil(pk);
}

void sb_fuzz_seeds(const char *dir)
{
	pack_seed(dir, "report", report);
	pack_seed(dir, "odd-keys", odd_keys);
	pack_seed(dir, "deep", deep);
}
