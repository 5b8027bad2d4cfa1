/*
 * test_export_wire - the export's wire format without a server
 * (consumers/export/wire.c): subject tokens escape every byte reversibly
 * and in one spelling only; a message built by the exporter decodes back
 * to the entry it came from; a message that is not ours, or any byte of
 * ours changed, is refused with a reason and never read out of bounds.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "testutil.h"

Test(token, every_byte_round_trips_and_only_the_token_set_stays_itself)
{
	char in[2], out[8], back[8];
	size_t n;

	for (int c = 1; c < 256; c++) {
		in[0] = (char)c;
		size_t len = sbx_token_escape(in, 1, out);
		bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '-' || c == '_';

		cr_assert_eq(len, plain ? 1u : 3u, "byte 0x%02x -> \"%s\"", c, out);
		cr_assert(!strpbrk(out, ".*> \t\r\n"), "byte 0x%02x -> \"%s\"", c, out);
		cr_assert_eq(sbx_token_unescape(out, len, back, sizeof(back), &n), 0, "%s", out);
		cr_assert_eq(n, 1);
		cr_assert_eq((unsigned char)back[0], c);
	}
}

Test(token, other_spellings_are_refused)
{
	static const char *const bad[] = { "",	  "%",	 "%4",	"%GG", "%2e", "%41",
					   "a.b", "a b", "%00", "a*",  "a>",  "%2E%" };
	char out[64];
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(sbx_token_unescape(bad[i], strlen(bad[i]), out, sizeof(out), &n),
			     -EBADMSG, "\"%s\" was accepted", bad[i]);
	/* Longer than the caller's buffer: refused, not truncated. */
	cr_assert_eq(sbx_token_unescape("abcdef", 6, out, 4, &n), -EBADMSG);
	cr_assert_eq(sbx_token_unescape("a%2Eb", 5, out, sizeof(out), &n), 0);
	cr_assert_str_eq(out, "a.b");
}

Test(names, streams_prefixes_and_hosts_are_checked)
{
	struct sbx_target ok = { NULL, "caps_1-x", "lab.snap" };
	struct sbx_target dot = { NULL, "a.b", NULL }, empty = { NULL, "", NULL },
			  wild = { NULL, "s", "a.*" }, dots = { NULL, "s", "a..b" };

	cr_assert_eq(sbx_target_check(&ok), 0, "%s", sbx_last_error());
	cr_assert_eq(sbx_target_check(&dot), -EINVAL);
	cr_assert_eq(sbx_target_check(&empty), -EINVAL);
	cr_assert_eq(sbx_target_check(&wild), -EINVAL);
	cr_assert_eq(sbx_target_check(&dots), -EINVAL);
	cr_assert_eq(sbx_host_check("vm7.lab.example"), 0);
	cr_assert_eq(sbx_host_check("a b"), -EINVAL);
	cr_assert_eq(sbx_host_check(""), -EINVAL);
}

static uint8_t report[600];

/* A snapshot message as the exporter builds it, with the accounting header. */
static natsMsg *snap_msg(const char *tag, struct sb_stats st)
{
	struct sbx_origin o = { .prefix = "snapbridge", .host = "vm.7", .max_payload = 1 << 20 };
	struct sb_entry e = { .store_seq = 42, .placeholder = true, .report = report };
	struct sbx_counts c = { .rec = { 50, 30, 10, 5, 4, 1 } };
	natsMsg *m = NULL;

	for (int i = 0; i < SB_REGION_ID_BYTES; i++)
		o.region[i] = (uint8_t)(0xa0 + i);
	snprintf(e.tag, sizeof(e.tag), "%s", tag);
	snprintf(e.schema, sizeof(e.schema), "sch.v2");
	e.report_len = tu_report(report, 500, 42);
	e.stats = st;
	e.meta = (struct sb_meta){
		.has_elapsed = true, .elapsed_ms = 7, .has_step = true, .step_index = 3
	};
	cr_assert_eq(sbx_snap_msg(&o, &e, &m), 0, "%s", sbx_last_error());
	cr_assert_eq(sbx_set_counts(m, SBX_SNAP, &c), 0);
	return m;
}

Test(message, a_snapshot_decodes_back_to_its_entry)
{
	static const uint8_t doc[] = { 0x81, 0xa1, 'k', 0x05 };
	struct sb_stats st = { .kind = SB_STATS_OK, .msgpack = doc, .msgpack_len = sizeof(doc) };
	natsMsg *m = snap_msg("a.b *>%\xc3\xa9", st);
	struct sbx_msg d;

	cr_assert_str_eq(natsMsg_GetSubject(m), "snapbridge.vm%2E7.snap.a%2Eb%20%2A%3E%25%C3%A9");
	cr_assert_eq(sbx_msg_decode(m, "snapbridge", &d), 0, "%s", sbx_last_error());
	cr_assert_eq(d.kind, SBX_SNAP);
	cr_assert_str_eq(d.host, "vm.7");
	cr_assert_eq(d.region[0], 0xa0);
	cr_assert_str_eq(d.entry.tag, "a.b *>%\xc3\xa9");
	cr_assert_str_eq(d.entry.schema, "sch.v2");
	cr_assert_eq(d.entry.store_seq, 42);
	cr_assert(d.entry.placeholder);
	cr_assert(d.entry.meta.has_elapsed && d.entry.meta.elapsed_ms == 7);
	cr_assert(!d.entry.meta.has_boundary);
	cr_assert(d.entry.meta.has_step && d.entry.meta.step_index == 3);
	cr_assert_eq(d.entry.report_len, tu_report(report, 500, 42));
	cr_assert(!memcmp(d.entry.report, report, d.entry.report_len), "report bytes differ");
	cr_assert_eq(d.entry.stats.kind, SB_STATS_OK);
	cr_assert_eq(d.entry.stats.msgpack_len, sizeof(doc));
	cr_assert(!memcmp(d.entry.stats.msgpack, doc, sizeof(doc)));
	cr_assert_eq(d.counts.rec.stores, 50);
	cr_assert_eq(d.counts.rec.torn, 1);
	const char *id = NULL;
	natsMsgHeader_Get(d.raw, "Nats-Msg-Id", &id);
	cr_assert_str_eq(id, "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf:42");
	sbx_msg_free(&d);
}

Test(message, a_missing_reason_survives_the_trip)
{
	struct sb_stats st = {
		.kind = SB_STATS_MISSING,
		.missing = { .kind = SB_MISSING_SCHEDULER_ERROR, .text = "ioctl failed", .err = 5 }
	};
	natsMsg *m = snap_msg("t", st);
	struct sbx_msg d;

	cr_assert_eq(sbx_msg_decode(m, "snapbridge", &d), 0, "%s", sbx_last_error());
	cr_assert_eq(d.entry.stats.kind, SB_STATS_MISSING);
	cr_assert_eq(d.entry.stats.missing.kind, SB_MISSING_SCHEDULER_ERROR);
	cr_assert_eq(d.entry.stats.missing.err, 5);
	cr_assert_str_eq(d.entry.stats.missing.text, "ioctl failed");
	sbx_msg_free(&d);
}

/*
 * The region takes a report nested at any depth (sb_msgpack_check is
 * iterative), so its export must read back too: a reader that refused it
 * would fail drain --nats, and an exporter whose last message it is could
 * never resume.
 */
Test(message, a_report_nested_deeper_than_any_stack_decodes_back)
{
	enum { DEPTH = 5000 };
	static uint8_t deep[DEPTH + 1];
	struct sbx_origin o = { .prefix = "snapbridge", .host = "h", .max_payload = 1 << 20 };
	struct sb_entry e = { .store_seq = 9, .report = deep, .report_len = sizeof(deep) };
	struct sbx_counts c = { .rec = { 9, 1, 8, 0, 0, 0 } };
	struct sbx_msg d;
	natsMsg *m = NULL;

	memset(deep, 0x91, DEPTH); /* [[[...[1]...]]] */
	deep[DEPTH] = 0x01;
	cr_assert_eq(sb_msgpack_check(deep, sizeof(deep)), 0, "the region would refuse it");
	o.region[0] = 1;
	snprintf(e.tag, sizeof(e.tag), "deep");
	e.stats.kind = SB_STATS_OK;
	e.stats.msgpack = deep;
	e.stats.msgpack_len = sizeof(deep);
	cr_assert_eq(sbx_snap_msg(&o, &e, &m), 0, "%s", sbx_last_error());
	cr_assert_eq(sbx_set_counts(m, SBX_SNAP, &c), 0);
	cr_assert_eq(sbx_msg_decode(m, "snapbridge", &d), 0, "%s", sbx_last_error());
	cr_assert_eq(d.entry.report_len, sizeof(deep));
	cr_assert(!memcmp(d.entry.report, deep, sizeof(deep)));
	cr_assert_eq(d.entry.stats.msgpack_len, sizeof(deep));
	sbx_msg_free(&d);
}

/*
 * The region stores report and stats bytes it was not asked to validate
 * (SB_BRIDGE_VALIDATE_MSGPACK is opt-in), so the export must carry bytes
 * that are not msgpack too, and carry them back exactly: a message the
 * reader refused would stop drain --nats, and an exporter whose last
 * message it is could never start again for that host.
 */
Test(message, report_and_stats_that_are_not_msgpack_come_back_byte_for_byte)
{
	static const uint8_t bad_report[] = { 0x82, 0xa1, 'k' }; /* a 2-map cut short */
	static const uint8_t bad_stats[] = { 0xc1, 0x00 };	 /* 0xc1: never used */
	struct sbx_origin o = { .prefix = "snapbridge", .host = "h", .max_payload = 1 << 20 };
	struct sb_entry e = { .store_seq = 3,
			      .report = bad_report,
			      .report_len = sizeof(bad_report) };
	struct sbx_counts c = { .rec = { 3, 1, 2, 0, 0, 0 } };
	struct sbx_msg d;
	natsMsg *m = NULL;

	o.region[0] = 1;
	snprintf(e.tag, sizeof(e.tag), "raw");
	e.stats = (struct sb_stats){ .kind = SB_STATS_OK,
				     .msgpack = bad_stats,
				     .msgpack_len = sizeof(bad_stats) };
	cr_assert_eq(sbx_snap_msg(&o, &e, &m), 0, "%s", sbx_last_error());
	cr_assert_eq(sbx_set_counts(m, SBX_SNAP, &c), 0);
	/* The envelope stays one msgpack object for any reader of the stream. */
	cr_assert_eq(sb_msgpack_check(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m)), 0,
		     "%s", sb_last_error());
	cr_assert_eq(sbx_msg_decode(m, "snapbridge", &d), 0, "%s", sbx_last_error());
	cr_assert_eq(d.entry.report_len, sizeof(bad_report));
	cr_assert(!memcmp(d.entry.report, bad_report, sizeof(bad_report)));
	cr_assert_eq(d.entry.stats.kind, SB_STATS_OK);
	cr_assert_eq(d.entry.stats.msgpack_len, sizeof(bad_stats));
	cr_assert(!memcmp(d.entry.stats.msgpack, bad_stats, sizeof(bad_stats)));
	sbx_msg_free(&d);
}

/* A copy of m with its body replaced (headers kept). */
static natsMsg *with_body(natsMsg *m, const void *body, int len)
{
	natsMsg *c = NULL;
	const char **keys = NULL;
	int n = 0;

	cr_assert_eq(natsMsg_Create(&c, natsMsg_GetSubject(m), NULL, body, len), NATS_OK);
	natsMsgHeader_Keys(m, &keys, &n);
	for (int i = 0; i < n; i++) {
		const char *v = NULL;

		natsMsgHeader_Get(m, keys[i], &v);
		natsMsgHeader_Set(c, keys[i], v);
	}
	free((void *)keys);
	return c;
}

Test(message, any_changed_body_byte_is_refused_or_still_in_bounds)
{
	struct sb_stats st = { .kind = SB_STATS_ABSENT };
	natsMsg *m = snap_msg("t", st);
	int len = natsMsg_GetDataLength(m);
	uint8_t *body = malloc((size_t)len);
	int refused = 0;

	memcpy(body, natsMsg_GetData(m), (size_t)len);
	/* Each byte of the envelope's frame, flipped: a decode that says yes stays in bounds. */
	for (int i = 0; i < len; i++) {
		if (i > 12 && i < len - 8)
			continue; /* inside the report: any bytes are a valid bin payload */
		for (int bit = 0; bit < 8; bit++) {
			struct sbx_msg d;

			body[i] ^= (uint8_t)(1u << bit);
			natsMsg *c = with_body(m, body, len);
			if (sbx_msg_decode(c, "snapbridge", &d) == 0) {
				cr_assert_leq(d.entry.report_len, (size_t)len);
				sbx_msg_free(&d);
			} else {
				refused++;
				cr_assert(strstr(sbx_last_error(), "not a snapbridge export"), "%s",
					  sbx_last_error());
				natsMsg_Destroy(c);
			}
			body[i] ^= (uint8_t)(1u << bit);
		}
	}
	cr_assert_gt(refused, 0);
	/* Truncated anywhere: always refused. */
	for (int cut = 0; cut < len; cut++) {
		struct sbx_msg d;
		natsMsg *c = with_body(m, body, cut);

		cr_assert_eq(sbx_msg_decode(c, "snapbridge", &d), -EBADMSG, "cut at %d", cut);
		natsMsg_Destroy(c);
	}
	free(body);
	natsMsg_Destroy(m);
}

Test(message, foreign_messages_are_named_not_decoded)
{
	static const struct {
		const char *subject;
		const char *body;
		const char *hdr, *val;
	} cases[] = {
		{ "snapbridge.h.snap.x", "hello", NULL, NULL },
		{ "other.h.snap.x", "hello", NULL, NULL },
		{ "snapbridge.h.weird", "hello", NULL, NULL },
		{ "snapbridge.h.snap.x", "\x80", "Snapbridge-Host", "h" },
		{ "snapbridge.h.event", "\x80", "Snapbridge-Host", "other" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		natsMsg *m = NULL;
		struct sbx_msg d;

		cr_assert_eq(natsMsg_Create(&m, cases[i].subject, NULL, cases[i].body,
					    (int)strlen(cases[i].body)),
			     NATS_OK);
		if (cases[i].hdr)
			natsMsgHeader_Set(m, cases[i].hdr, cases[i].val);
		cr_assert_eq(sbx_msg_decode(m, "snapbridge", &d), -EBADMSG, "case %zu", i);
		cr_assert(strstr(sbx_last_error(), cases[i].subject), "case %zu: %s", i,
			  sbx_last_error());
		natsMsg_Destroy(m);
	}
}
