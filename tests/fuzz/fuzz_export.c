/*
 * fuzz_export.c - decoding messages read back from a NATS stream
 * (sbx_msg_decode, consumers/export/wire.c): what drain --nats, stat --nats
 * and a resuming exporter do with every message under the prefix, which
 * anyone who can publish to the stream controls.
 *
 * Input: byte 0 picks the subject (snap, event, kernel_op, cgroup_procs,
 * summary, resume, or an unknown kind), then headers as "key\0value\0"
 * pairs ended by an empty key, then the body. A decoded message must point
 * only inside its body, stay within the bounds of types.h and aux.h, and a
 * snapshot must re-encode to a message that decodes to the same entry.
 */
#define _GNU_SOURCE
#include <string.h>

#include <nats/nats.h>

#include "../../consumers/export/export.h"
#include "../testutil.h"
#include "fuzz.h"

SB_FUZZ_MAIN

static const char *const subjects[] = {
	"snapbridge.vm%2E7.snap.a%2Eb", "snapbridge.vm%2E7.event",
	"snapbridge.vm%2E7.kernel_op",	"snapbridge.vm%2E7.cgroup_procs",
	"snapbridge.vm%2E7.summary",	"snapbridge.vm%2E7.resume",
	"snapbridge.vm%2E7.other",
};
#define NSUBJ (sizeof(subjects) / sizeof(subjects[0]))

void sb_fuzz_init(void)
{
	nats_Open(-1);
}

static bool inside(const void *p, size_t n, const uint8_t *body, size_t len)
{
	const uint8_t *q = p;

	return n == 0 || (q >= body && n <= len && q - body <= (ptrdiff_t)(len - n));
}

static void check_snap(const struct sbx_msg *m, const uint8_t *body, size_t len)
{
	const struct sb_entry *e = &m->entry;
	struct sbx_origin o = { .prefix = "snapbridge", .host = m->host };
	const struct sb_drain_counts *c = &m->counts.rec;
	natsMsg *again = NULL;
	struct sbx_msg d;

	SB_FUZZ_CHECK(strlen(e->tag) >= 1 && strlen(e->tag) <= SB_TAG_MAX);
	SB_FUZZ_CHECK(strlen(e->schema) <= SB_SCHEMA_MAX);
	SB_FUZZ_CHECK(inside(e->report, e->report_len, body, len) && e->report_len > 0);
	if (e->stats.kind == SB_STATS_OK)
		SB_FUZZ_CHECK(inside(e->stats.msgpack, e->stats.msgpack_len, body, len));
	if (e->stats.kind == SB_STATS_MISSING && e->stats.missing.text)
		SB_FUZZ_CHECK(strlen(e->stats.missing.text) <= SB_REASON_MAX);
	SB_FUZZ_CHECK(c->delivered + c->superseded + c->evicted + c->lapped + c->torn == c->stores);
	memcpy(o.region, m->region, sizeof(o.region));
	SB_FUZZ_CHECK(sbx_snap_msg(&o, e, &again) == 0);
	SB_FUZZ_CHECK(sbx_set_counts(again, SBX_SNAP, &m->counts) == 0);
	SB_FUZZ_CHECK(sbx_msg_decode(again, "snapbridge", &d) == 0);
	SB_FUZZ_CHECK(!strcmp(d.entry.tag, e->tag) && !strcmp(d.entry.schema, e->schema));
	SB_FUZZ_CHECK(d.entry.store_seq == e->store_seq && d.entry.placeholder == e->placeholder);
	SB_FUZZ_CHECK(d.entry.report_len == e->report_len &&
		      !memcmp(d.entry.report, e->report, e->report_len));
	SB_FUZZ_CHECK(d.entry.stats.kind == e->stats.kind);
	SB_FUZZ_CHECK(!memcmp(&d.entry.meta, &e->meta, sizeof(e->meta)));
	sbx_msg_free(&d);
}

/*
 * The "key\0value\0" pairs from data[1]: set them on msg (NULL: only
 * walk). Returns where the body starts (after the empty key ending them).
 */
static size_t headers(const uint8_t *data, size_t size, natsMsg *msg)
{
	size_t i = 1;

	while (i < size && data[i]) {
		const char *k = (const char *)data + i;
		size_t kl = strnlen(k, size - i);

		if (i + kl >= size)
			return size;
		const char *v = k + kl + 1;
		size_t vl = strnlen(v, size - i - kl - 1);
		if (i + kl + 1 + vl >= size)
			return size;
		/* What a NATS header can hold at all: no ':' in a key, no line breaks. */
		if (msg && !memchr(k, ':', kl) && !strpbrk(k, "\r\n") && !strpbrk(v, "\r\n"))
			natsMsgHeader_Set(msg, k, v);
		i += kl + 1 + vl + 1;
	}
	return i < size ? i + 1 : size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	natsMsg *msg = NULL;
	struct sbx_msg m;

	if (size < 1)
		return 0;
	size_t body_at = headers(data, size, NULL);
	if (natsMsg_Create(&msg, subjects[data[0] % NSUBJ], NULL, (const char *)data + body_at,
			   (int)(size - body_at)) != NATS_OK)
		return 0;
	headers(data, size, msg);
	const uint8_t *body = (const uint8_t *)natsMsg_GetData(msg);
	size_t len = (size_t)natsMsg_GetDataLength(msg);
	if (sbx_msg_decode(msg, "snapbridge", &m) != 0) {
		natsMsg_Destroy(msg);
		return 0;
	}
	SB_FUZZ_CHECK(!strcmp(m.host, "vm.7"));
	switch (m.kind) {
	case SBX_SNAP:
		check_snap(&m, body, len);
		break;
	case SBX_EVENT:
		SB_FUZZ_CHECK(strlen(m.event.tag) <= SB_TAG_MAX &&
			      strlen(m.event.detail) <= SB_TAG_MAX);
		break;
	case SBX_KERNEL_OP:
		SB_FUZZ_CHECK(m.aux.reply && inside(m.aux.msgpack, m.aux.msgpack_len, body, len));
		break;
	case SBX_CGROUP_PROCS:
		SB_FUZZ_CHECK(m.aux.procs && m.aux.procs->n_pids <= SB_CGROUP_PIDS_MAX &&
			      inside(m.aux.msgpack, m.aux.msgpack_len, body, len));
		break;
	default:
		break;
	}
	sbx_msg_free(&m);
	return 0;
}

/* A message as this target's input: subject index, headers, body. */
static void seed_of(const char *dir, const char *name, int subj, natsMsg *m)
{
	const char **keys = NULL;
	int n = 0;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fputc(subj, f);
	natsMsgHeader_Keys(m, &keys, &n);
	for (int k = 0; k < n; k++) {
		const char *v = NULL;

		natsMsgHeader_Get(m, keys[k], &v);
		fwrite(keys[k], 1, strlen(keys[k]) + 1, f);
		fwrite(v, 1, strlen(v) + 1, f);
	}
	free((void *)keys);
	fputc(0, f);
	fwrite(natsMsg_GetData(m), 1, (size_t)natsMsg_GetDataLength(m), f);
	fclose(f);
	sb_fuzz_seed(dir, name, buf, len);
	free(buf);
	natsMsg_Destroy(m);
}

void sb_fuzz_seeds(const char *dir)
{
	static const uint8_t doc[] = { 0x81, 0xa1, 'k', 0x05 };
	uint8_t report[300];
	struct sbx_origin o = { .prefix = "snapbridge", .host = "vm.7", .max_payload = 1 << 20 };
	struct sb_entry e = { .store_seq = 42, .report = report };
	struct sbx_counts c = { .rec = { 50, 30, 10, 5, 4, 1 }, .events = 3, .aux = { 2, 2, 0 } };
	struct sb_event ev = { .kind = SB_EVENT_EVICTION, .seq = 7, .cap = 16 };
	int32_t pids[] = { 1, 22, 333 };
	struct sb_cgroup_procs procs = {
		.tag = "cg", .cgroup = "/sys/fs/cgroup/x", .pids = pids, .n_pids = 3
	};
	const struct sb_kop_reply reply = { .id = 3, .success = false, .reason = "no symbol" };
	void *kop = NULL;
	size_t kop_len = 0;
	natsMsg *m;

	for (int i = 0; i < SB_REGION_ID_BYTES; i++)
		o.region[i] = (uint8_t)(0xa0 + i);
	snprintf(e.tag, sizeof(e.tag), "a.b");
	snprintf(e.schema, sizeof(e.schema), "sch.v2");
	e.report_len = tu_report(report, 200, 42);
	e.meta = (struct sb_meta){ .has_elapsed = true, .elapsed_ms = 7 };
	e.stats = (struct sb_stats){ .kind = SB_STATS_OK, .msgpack = doc, .msgpack_len = 4 };
	if (sbx_snap_msg(&o, &e, &m) == 0 && sbx_set_counts(m, SBX_SNAP, &c) == 0)
		seed_of(dir, "snap-stats", 0, m);
	e.stats = (struct sb_stats){
		.kind = SB_STATS_MISSING,
		.missing = { .kind = SB_MISSING_SCHEDULER_ERROR, .text = "ioctl", .err = 5 }
	};
	if (sbx_snap_msg(&o, &e, &m) == 0 && sbx_set_counts(m, SBX_SNAP, &c) == 0)
		seed_of(dir, "snap-missing", 0, m);
	snprintf(ev.tag, sizeof(ev.tag), "old");
	snprintf(ev.detail, sizeof(ev.detail), "new");
	if (sbx_event_msg(&o, &ev, 7, &m) == 0 && sbx_set_counts(m, SBX_EVENT, &c) == 0)
		seed_of(dir, "event", 1, m);
	if (sb_kop_reply_encode(&reply, &kop, &kop_len) == 0) {
		struct sb_aux_item it = { .kind = SB_AUX_KERNEL_OP,
					  .seq = 1,
					  .tag = "kop",
					  .msgpack = kop,
					  .msgpack_len = kop_len };
		if (sbx_aux_msg(&o, &it, &m) == 0 && sbx_set_counts(m, SBX_KERNEL_OP, &c) == 0)
			seed_of(dir, "kernel-op", 2, m);
		free(kop);
	}
	struct sb_aux_item it = {
		.kind = SB_AUX_CGROUP_PROCS, .seq = 2, .tag = "cg", .procs = &procs
	};
	if (sbx_aux_msg(&o, &it, &m) == 0 && sbx_set_counts(m, SBX_CGROUP_PROCS, &c) == 0)
		seed_of(dir, "cgroup-procs", 3, m);
	struct sbx_summary s = {
		.at = { 50, 7, 2 }, .counts = c, .final = true, .coordinator = SB_COORD_CLOSED
	};
	if (sbx_summary_msg(&o, &s, "0123456789abcdef", 1, &m) == 0)
		seed_of(dir, "summary", 4, m);
	if (sbx_resume_msg(&o, "0123456789abcdef", &m) == 0)
		seed_of(dir, "resume", 5, m);
}
