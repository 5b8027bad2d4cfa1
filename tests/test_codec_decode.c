/*
 * test_codec_decode.c - decoding a missing-stats reason from untrusted
 * record bytes (ring/format/missing_stats.c, ring/format/msgpack.c). Regressions found by tests/fuzz/fuzz_codec.c.
 */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <string.h>

#include "../ring/format/missing_stats.h"

static void pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/* {"missing": kind, "args": "--flag", "errno": 3, "size": 5, "max": 9} */
static void encode_with_every_field(msgpack_sbuffer *sb, const char *kind)
{
	msgpack_packer pk;

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	pack_str(&pk, "missing");
	pack_str(&pk, kind);
	pack_str(&pk, "args");
	pack_str(&pk, "--flag");
	pack_str(&pk, "errno");
	msgpack_pack_int32(&pk, 3);
	pack_str(&pk, "size");
	msgpack_pack_uint64(&pk, 5);
	pack_str(&pk, "max");
	msgpack_pack_uint64(&pk, 9);
}

Test(codec_decode, reason_keeps_only_the_fields_its_variant_has, .timeout = 10)
{
	static char text[SB_REASON_MAX + 1];
	msgpack_sbuffer sb;
	struct sb_missing m;

	encode_with_every_field(&sb, "RequestTooLarge");
	cr_assert_eq(sb__missing_decode(sb.data, sb.size, &m, text), 0);
	cr_assert_eq(m.kind, SB_MISSING_REQUEST_TOO_LARGE);
	cr_assert_null(m.text, "RequestTooLarge has no text, got \"%s\"", m.text);
	cr_assert_eq(m.err, 0);
	cr_assert_eq(m.size, 5);
	cr_assert_eq(m.max, 9);
	msgpack_sbuffer_destroy(&sb);

	encode_with_every_field(&sb, "SchedulerError");
	cr_assert_eq(sb__missing_decode(sb.data, sb.size, &m, text), 0);
	cr_assert_str_eq(m.text, "--flag");
	cr_assert_eq(m.err, 3);
	cr_assert_eq(m.size, 0);
	cr_assert_eq(m.max, 0);
	msgpack_sbuffer_destroy(&sb);

	encode_with_every_field(&sb, "Cancelled");
	cr_assert_eq(sb__missing_decode(sb.data, sb.size, &m, text), 0);
	cr_assert_null(m.text);
	cr_assert_eq(m.err + m.size + m.max, 0);
	msgpack_sbuffer_destroy(&sb);
}

Test(codec_decode, decoded_reason_encodes_to_the_same_reason, .timeout = 10)
{
	static char text[SB_REASON_MAX + 1], text2[SB_REASON_MAX + 1];
	static uint8_t enc[SB_MISSING_ENC_MAX];
	static const char *const kinds[] = { "NoSchedulerBinary", "NoScheduler",
					     "DuringFreeze",	  "Cancelled",
					     "SchedulerError",	  "MissingResp",
					     "RequestTooLarge",	  "ResponseTooLarge",
					     "MutexPoisoned" };

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		msgpack_sbuffer sb;
		struct sb_missing m, m2;
		size_t len;

		encode_with_every_field(&sb, kinds[i]);
		cr_assert_eq(sb__missing_decode(sb.data, sb.size, &m, text), 0, "%s", kinds[i]);
		cr_assert_eq(sb__missing_encode(&m, enc, sizeof(enc), &len), 0, "%s", kinds[i]);
		cr_assert_eq(sb__missing_decode(enc, len, &m2, text2), 0, "%s", kinds[i]);
		cr_assert_eq(m2.kind, m.kind);
		cr_assert_eq(!m.text, !m2.text, "%s: text lost or invented", kinds[i]);
		if (m.text)
			cr_assert_str_eq(m.text, m2.text);
		cr_assert_eq(m2.err, m.err, "%s", kinds[i]);
		cr_assert_eq(m2.size, m.size, "%s", kinds[i]);
		cr_assert_eq(m2.max, m.max, "%s", kinds[i]);
		msgpack_sbuffer_destroy(&sb);
	}
}
