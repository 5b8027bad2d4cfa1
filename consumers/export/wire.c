/*
 * consumers/export/wire.c - the export's wire format, both halves: the
 * subjects, headers and msgpack envelopes the exporter publishes, and the
 * decoder that reads them back and trusts none of it.
 *
 *   subject   <prefix>.<host>.snap.<tag> | .event | .kernel_op |
 *             .cgroup_procs | .summary | .resume   (host, tag escaped)
 *   headers   Nats-Msg-Id, Snapbridge-Region, Snapbridge-Host, the
 *             kind's sequence, Snapbridge-Counts, per-kind metadata
 *   body      one msgpack map; a snapshot's is {"v": 1, "report": R,
 *             "stats": S | nil} with R and S the region's bytes verbatim
 *
 * docs/ARCHITECTURE.md ("Export to NATS JetStream") has the full table.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>

#include "export.h"
#include "wire.h"

/* ---- errors ---------------------------------------------------------------------------- */

static __thread char last_error[512];

int sbx__fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return err;
}

const char *sbx_last_error(void)
{
	return last_error;
}

char *sbx_region_text(const uint8_t id[SB_REGION_ID_BYTES], char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < SB_REGION_ID_BYTES; i++) {
		out[2 * i] = hex[id[i] >> 4];
		out[2 * i + 1] = hex[id[i] & 15];
	}
	out[2 * SB_REGION_ID_BYTES] = '\0';
	return out;
}

/* v in decimal at buf (24 bytes); returns buf. */
static char *u64_text(uint64_t v, char *buf)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (int i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return buf;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 32 lowercase hex digits, not all zero (as the region header requires). */
static bool region_parse(const char *s, uint8_t id[SB_REGION_ID_BYTES])
{
	uint8_t any = 0;

	if (!s || strlen(s) != 2 * SB_REGION_ID_BYTES)
		return false;
	for (int i = 0; i < SB_REGION_ID_BYTES; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0 || (s[2 * i] >= 'A' && s[2 * i] <= 'F') ||
		    (s[2 * i + 1] >= 'A' && s[2 * i + 1] <= 'F'))
			return false;
		id[i] = (uint8_t)(hi << 4 | lo);
		any |= id[i];
	}
	return any != 0;
}

/* ---- names ----------------------------------------------------------------------------- */

static bool token_byte(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

size_t sbx_token_escape(const char *in, size_t len, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (token_byte(c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return o;
}

int sbx_token_unescape(const char *tok, size_t toklen, char *out, size_t cap, size_t *len)
{
	size_t o = 0;

	if (toklen == 0)
		return sbx__fail(-EBADMSG, "an empty subject token");
	for (size_t i = 0; i < toklen; i++) {
		unsigned char c = (unsigned char)tok[i];

		if (c == '%') {
			int hi = i + 2 < toklen ? hexval(tok[i + 1]) : -1;
			int lo = hi >= 0 ? hexval(tok[i + 2]) : -1;

			/* Only uppercase, and only for a byte that needed it: one spelling each. */
			if (hi < 0 || lo < 0 || (tok[i + 1] >= 'a' && tok[i + 1] <= 'f') ||
			    (tok[i + 2] >= 'a' && tok[i + 2] <= 'f'))
				return sbx__fail(-EBADMSG, "a bad %%-escape in \"%.*s\"",
						 (int)toklen, tok);
			c = (unsigned char)(hi << 4 | lo);
			if (token_byte(c) || c == 0)
				return sbx__fail(-EBADMSG, "%%%c%c need not be escaped in \"%.*s\"",
						 tok[i + 1], tok[i + 2], (int)toklen, tok);
			i += 2;
		} else if (!token_byte(c)) {
			return sbx__fail(-EBADMSG, "byte 0x%02x cannot stand in a token", c);
		}
		if (o + 1 >= cap)
			return sbx__fail(-EBADMSG, "token \"%.*s\" decodes to over %zu bytes",
					 (int)toklen, tok, cap - 1);
		out[o++] = (char)c;
	}
	out[o] = '\0';
	*len = o;
	return 0;
}

int sbx_host_check(const char *host)
{
	size_t n = host ? strlen(host) : 0;

	if (n == 0 || n > SBX_HOST_MAX)
		return sbx__fail(-EINVAL, "a host name needs 1..%d bytes", SBX_HOST_MAX);
	for (size_t i = 0; i < n; i++)
		if (host[i] <= ' ' || host[i] > '~')
			return sbx__fail(-EINVAL,
					 "host name \"%s\" holds byte 0x%02x: only printable "
					 "ASCII without blanks",
					 host, (unsigned char)host[i]);
	return 0;
}

int sbx_target_check(const struct sbx_target *t)
{
	const char *p = t->prefix ? t->prefix : SBX_DEFAULT_PREFIX;
	size_t n = t->stream ? strlen(t->stream) : 0;

	if (n == 0 || n > SBX_STREAM_MAX)
		return sbx__fail(-EINVAL, "a stream name needs 1..%d bytes", SBX_STREAM_MAX);
	for (size_t i = 0; i < n; i++)
		if (!token_byte((unsigned char)t->stream[i]))
			return sbx__fail(-EINVAL,
					 "stream name \"%s\": use only letters, digits, '-' and "
					 "'_'",
					 t->stream);
	n = strlen(p);
	if (n == 0 || n > SBX_PREFIX_MAX || p[0] == '.' || p[n - 1] == '.' || strstr(p, ".."))
		return sbx__fail(-EINVAL,
				 "subject prefix \"%s\": dot-separated tokens, 1..%d bytes in all",
				 p, SBX_PREFIX_MAX);
	for (size_t i = 0; i < n; i++)
		if (p[i] != '.' && !token_byte((unsigned char)p[i]))
			return sbx__fail(-EINVAL,
					 "subject prefix \"%s\": tokens of letters, digits, '-' "
					 "and '_' only",
					 p);
	return 0;
}

/* ---- headers --------------------------------------------------------------------------- */

static const char H_MSG_ID[] = "Nats-Msg-Id";
static const char H_REGION[] = "Snapbridge-Region";
static const char H_HOST[] = "Snapbridge-Host";
static const char H_STORE_SEQ[] = "Snapbridge-Store-Seq";
static const char H_EVENT_SEQ[] = "Snapbridge-Event-Seq";
static const char H_AUX_SEQ[] = "Snapbridge-Aux-Seq";
static const char H_TAG[] = "Snapbridge-Tag";
static const char H_SCHEMA[] = "Snapbridge-Schema";
static const char H_PLACEHOLDER[] = "Snapbridge-Placeholder";
static const char H_ELAPSED[] = "Snapbridge-Elapsed-Ms";
static const char H_BOUNDARY[] = "Snapbridge-Boundary-Offset-Ms";
static const char H_STEP[] = "Snapbridge-Step-Index";
static const char H_STATS[] = "Snapbridge-Stats";
static const char H_COUNTS[] = "Snapbridge-Counts";
static const char H_RAW[] = "Snapbridge-Raw";

static const char *const kind_names[] = {
	[SBX_SNAP] = "snap",	       [SBX_EVENT] = "event",
	[SBX_KERNEL_OP] = "kernel_op", [SBX_CGROUP_PROCS] = "cgroup_procs",
	[SBX_SUMMARY] = "summary",     [SBX_RESUME] = "resume",
};

const char *sbx__kind_name(enum sbx_kind k)
{
	return k >= SBX_SNAP && k <= SBX_RESUME ? kind_names[k] : "?";
}

static int set_header(natsMsg *m, const char *key, const char *value)
{
	return natsMsgHeader_Set(m, key, value) == NATS_OK ? 0 : -ENOMEM;
}

static int set_u64(natsMsg *m, const char *key, uint64_t v)
{
	char buf[24];

	return set_header(m, key, u64_text(v, buf));
}

/* A decimal with no sign, blank or leading zero, that fits 64 bits. */
static bool parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s || (s[0] == '0' && s[1]))
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

/*
 * Start a message: subject, Nats-Msg-Id, region, host. The subject is
 * "<prefix>.<host token>.<what>".
 */
static pthread_once_t nats_once = PTHREAD_ONCE_INIT;
static natsStatus nats_open_status;

static void open_nats(void)
{
	nats_open_status = nats_Open(-1);
}

static int start_msg(const struct sbx_origin *o, const char *what, const char *id_tail,
		     const void *body, size_t len, natsMsg **out)
{
	char host_tok[3 * SBX_HOST_MAX + 1], region[SBX_REGION_TEXT];
	char subject[SBX_PREFIX_MAX + 3 * SBX_HOST_MAX + 3 * SB_KOP_TAG_MAX + 16];
	char id[SBX_REGION_TEXT + 96];
	natsMsg *m = NULL;
	int err = -ENOMEM;

	/* natsMsg needs the library up even without a connection (a test, a benchmark). */
	pthread_once(&nats_once, open_nats);
	if (nats_open_status != NATS_OK)
		return sbx__fail(-ENOMEM, "cannot initialize libnats");
	sbx_token_escape(o->host, strlen(o->host), host_tok);
	sbx_region_text(o->region, region);
	if (len > INT32_MAX)
		return sbx__fail(-E2BIG, "a %zu-byte message", len);
	snprintf(subject, sizeof(subject), "%s.%s.%s", o->prefix, host_tok, what);
	snprintf(id, sizeof(id), "%s:%s", region, id_tail);
	if (natsMsg_Create(&m, subject, NULL, body, (int)len) == NATS_OK && m &&
	    !set_header(m, H_MSG_ID, id) && !set_header(m, H_REGION, region) &&
	    !set_header(m, H_HOST, o->host))
		err = 0;
	if (err) {
		natsMsg_Destroy(m);
		return sbx__fail(err, "out of memory building a message");
	}
	*out = m;
	return 0;
}

/* What the headers add to the body, as the server counts it against max_payload. */
#define HEADER_ALLOWANCE 1024

static int check_payload(const struct sbx_origin *o, size_t body, const char *what)
{
	if (o->max_payload > 0 && body + HEADER_ALLOWANCE > (uint64_t)o->max_payload)
		return sbx__fail(-E2BIG,
				 "%s is %zu bytes, over the server's max_payload of %lld (raise "
				 "max_payload in the nats-server config)",
				 what, body, (long long)o->max_payload);
	return 0;
}

/* ---- envelopes: encoding ----------------------------------------------------------------- */

static void pack_key(msgpack_packer *pk, const char *k)
{
	size_t n = strlen(k);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, k, n);
}

static void pack_text(msgpack_packer *pk, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s ? s : "", n);
}

/* The form docs/ARCHITECTURE.md gives for missing stats: {"missing": Name, fields...}. */
static void pack_missing(msgpack_packer *pk, const struct sb_missing *m)
{
	int n = 1;

	switch (m->kind) {
	case SB_MISSING_NO_SCHEDULER:
	case SB_MISSING_MISSING_RESP:
		n = 2;
		break;
	case SB_MISSING_SCHEDULER_ERROR:
	case SB_MISSING_REQUEST_TOO_LARGE:
	case SB_MISSING_RESPONSE_TOO_LARGE:
		n = 3;
		break;
	default:
		break;
	}
	msgpack_pack_map(pk, (size_t)n);
	pack_key(pk, "missing");
	pack_text(pk, sb_missing_kind_name(m->kind));
	switch (m->kind) {
	case SB_MISSING_NO_SCHEDULER:
		pack_key(pk, "reason");
		pack_text(pk, m->text);
		break;
	case SB_MISSING_SCHEDULER_ERROR:
		pack_key(pk, "errno");
		msgpack_pack_int32(pk, m->err);
		/* fall through */
	case SB_MISSING_MISSING_RESP:
		pack_key(pk, "args");
		pack_text(pk, m->text);
		break;
	case SB_MISSING_REQUEST_TOO_LARGE:
	case SB_MISSING_RESPONSE_TOO_LARGE:
		pack_key(pk, "size");
		msgpack_pack_uint64(pk, m->size);
		pack_key(pk, "max");
		msgpack_pack_uint64(pk, m->max);
		break;
	default:
		break;
	}
}

static const char *stats_kind_name(enum sb_stats_kind k)
{
	return k == SB_STATS_OK ? "ok" : k == SB_STATS_MISSING ? "missing" : "absent";
}

/* Room for n bytes in the caller's scratch buffer (or a fresh one): NULL on ENOMEM. */
static uint8_t *scratch(const struct sbx_origin *o, size_t n, uint8_t **own)
{
	struct sbx_buf *b = o->scratch;

	*own = NULL;
	if (!b)
		return *own = malloc(n ? n : 1);
	if (b->cap < n) {
		uint8_t *p = realloc(b->p, n);

		if (!p)
			return NULL;
		b->p = p;
		b->cap = n;
	}
	return b->p;
}

/*
 * The msgpack bin header of an n-byte payload into out (at most 5 bytes):
 * report or stats bytes that are not one msgpack object travel as a bin,
 * so the envelope stays one object whatever the region held.
 */
static size_t bin_head(size_t n, uint8_t out[5])
{
	if (n <= 0xff) {
		out[0] = 0xc4;
		out[1] = (uint8_t)n;
		return 2;
	}
	if (n <= 0xffff) {
		out[0] = 0xc5;
		out[1] = (uint8_t)(n >> 8);
		out[2] = (uint8_t)n;
		return 3;
	}
	out[0] = 0xc6;
	for (int i = 0; i < 4; i++)
		out[1 + i] = (uint8_t)(n >> (24 - 8 * i));
	return 5;
}

int sbx_snap_msg(const struct sbx_origin *o, const struct sb_entry *e, natsMsg **out)
{
	static const uint8_t head[] = { 0x83, 0xa1, 'v', 0x01, 0xa6, 'r', 'e', 'p', 'o', 'r', 't' };
	static const uint8_t stats_key[] = { 0xa5, 's', 't', 'a', 't', 's' };
	char tail[24], what[8 + 3 * SB_TAG_MAX + 1], esc[3 * SB_TAG_MAX + 1];
	msgpack_sbuffer missing = { 0 };
	natsMsg *m = NULL;
	uint8_t *own;
	int err;

	/* A missing reason is packed here; a report or stats document goes in verbatim. */
	if (e->stats.kind == SB_STATS_MISSING) {
		msgpack_packer pk;

		msgpack_sbuffer_init(&missing);
		msgpack_packer_init(&pk, &missing, msgpack_sbuffer_write);
		pack_missing(&pk, &e->stats.missing);
		if (!missing.data)
			return sbx__fail(-ENOMEM, "out of memory");
	}
	const void *stats = e->stats.kind == SB_STATS_OK	? e->stats.msgpack
			    : e->stats.kind == SB_STATS_MISSING ? (const void *)missing.data
								: "\xc0"; /* nil */
	size_t stats_len = e->stats.kind == SB_STATS_OK	       ? e->stats.msgpack_len
			   : e->stats.kind == SB_STATS_MISSING ? missing.size
							       : 1;
	/*
	 * The region checks report and stats bytes only when asked
	 * (SB_BRIDGE_VALIDATE_MSGPACK): what is not one msgpack object goes as
	 * a bin, named in Snapbridge-Raw, and comes back as the same bytes.
	 */
	uint8_t rep_bin[5], stats_bin[5];
	size_t rep_head = 0, stats_head = 0;
	if (e->report_len > UINT32_MAX || stats_len > UINT32_MAX)
		return sbx__fail(-E2BIG, "store %" PRIu64 " is over 4 GiB", e->store_seq);
	if (sb_msgpack_check(e->report, e->report_len) != 0)
		rep_head = bin_head(e->report_len, rep_bin);
	if (e->stats.kind == SB_STATS_OK && sb_msgpack_check(stats, stats_len) != 0)
		stats_head = bin_head(stats_len, stats_bin);
	size_t n =
	    sizeof(head) + rep_head + e->report_len + sizeof(stats_key) + stats_head + stats_len;
	char label[48];
	snprintf(label, sizeof(label), "store %" PRIu64, e->store_seq);
	err = check_payload(o, n, label);
	uint8_t *body = err ? NULL : scratch(o, n, &own);
	if (!err && !body)
		err = sbx__fail(-ENOMEM, "out of memory");
	if (err) {
		msgpack_sbuffer_destroy(&missing);
		return err;
	}
	/* {"v": 1, "report": R, "stats": S | nil} */
	uint8_t *p = body;
	memcpy(p, head, sizeof(head));
	p += sizeof(head);
	memcpy(p, rep_bin, rep_head);
	p += rep_head;
	memcpy(p, e->report, e->report_len);
	p += e->report_len;
	memcpy(p, stats_key, sizeof(stats_key));
	p += sizeof(stats_key);
	memcpy(p, stats_bin, stats_head);
	p += stats_head;
	memcpy(p, stats, stats_len);
	msgpack_sbuffer_destroy(&missing);

	sbx_token_escape(e->tag, strlen(e->tag), esc);
	snprintf(what, sizeof(what), "snap.%s", esc);
	err = start_msg(o, what, u64_text(e->store_seq, tail), body, n, &m);
	free(own);
	if (err)
		return err;
	char schema[3 * SB_SCHEMA_MAX + 1];
	sbx_token_escape(e->schema, strlen(e->schema), schema);
	const char *raw =
	    !rep_head ? (stats_head ? "stats" : NULL) : (stats_head ? "report stats" : "report");
	if (set_u64(m, H_STORE_SEQ, e->store_seq) || set_header(m, H_TAG, esc) ||
	    (e->schema[0] && set_header(m, H_SCHEMA, schema)) ||
	    set_header(m, H_PLACEHOLDER, e->placeholder ? "true" : "false") ||
	    (e->meta.has_elapsed && set_u64(m, H_ELAPSED, e->meta.elapsed_ms)) ||
	    (e->meta.has_boundary && set_u64(m, H_BOUNDARY, e->meta.boundary_offset_ms)) ||
	    (e->meta.has_step && set_u64(m, H_STEP, e->meta.step_index)) ||
	    set_header(m, H_STATS, stats_kind_name(e->stats.kind)) ||
	    (raw && set_header(m, H_RAW, raw))) {
		natsMsg_Destroy(m);
		return sbx__fail(-ENOMEM, "out of memory building a message");
	}
	*out = m;
	return 0;
}

int sbx_set_counts(natsMsg *m, enum sbx_kind kind, const struct sbx_counts *c)
{
	char buf[200];
	const struct sb_drain_counts *d = &c->rec;

	if (kind == SBX_SNAP)
		snprintf(buf, sizeof(buf),
			 "stores=%" PRIu64 " exported=%" PRIu64 " superseded=%" PRIu64
			 " evicted=%" PRIu64 " lapped=%" PRIu64 " torn=%" PRIu64,
			 d->stores, d->delivered, d->superseded, d->evicted, d->lapped, d->torn);
	else if (kind == SBX_EVENT)
		snprintf(buf, sizeof(buf), "events=%" PRIu64 " truncated=%" PRIu64, c->events,
			 c->events_truncated);
	else if (kind == SBX_KERNEL_OP || kind == SBX_CGROUP_PROCS)
		snprintf(buf, sizeof(buf),
			 "records=%" PRIu64 " delivered=%" PRIu64 " lapped=%" PRIu64,
			 c->aux.records, c->aux.delivered, c->aux.lapped);
	else
		return sbx__fail(-EINVAL, "a %s message carries no counts", sbx__kind_name(kind));
	return set_header(m, H_COUNTS, buf) ? sbx__fail(-ENOMEM, "out of memory") : 0;
}

static const char *cause_name(enum sb_evict_cause c)
{
	return c == SB_EVICT_BYTES ? "bytes" : "cap";
}

int sbx_event_msg(const struct sbx_origin *o, const struct sb_event *ev, uint64_t event_head,
		  natsMsg **out)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char tail[48];
	natsMsg *m = NULL;
	bool lost = ev->kind == SB_EVENT_LOG_TRUNCATED;
	/* A truncation marker stands at the head its drain reached; real events at their seq. */
	uint64_t at = lost ? event_head : ev->seq;
	int err;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 7);
	pack_key(&pk, "kind");
	pack_text(&pk, sb_event_kind_name(ev->kind));
	pack_key(&pk, "seq");
	msgpack_pack_uint64(&pk, ev->seq);
	pack_key(&pk, "tag");
	pack_text(&pk, ev->tag);
	pack_key(&pk, "detail");
	pack_text(&pk, ev->detail);
	pack_key(&pk, "cap");
	msgpack_pack_uint64(&pk, ev->cap);
	pack_key(&pk, "count");
	msgpack_pack_uint64(&pk, ev->count);
	pack_key(&pk, "cause");
	pack_text(&pk, cause_name(ev->cause));
	if (!sb.data) {
		err = sbx__fail(-ENOMEM, "out of memory");
		goto out;
	}
	snprintf(tail, sizeof(tail), "%s:%" PRIu64, lost ? "event-lost" : "event", at);
	err = start_msg(o, "event", tail, sb.data, sb.size, &m);
	if (err)
		goto out;
	if (set_u64(m, H_EVENT_SEQ, at)) {
		natsMsg_Destroy(m);
		err = sbx__fail(-ENOMEM, "out of memory building a message");
		goto out;
	}
	*out = m;
out:
	msgpack_sbuffer_destroy(&sb);
	return err;
}

int sbx_aux_msg(const struct sbx_origin *o, const struct sb_aux_item *it, natsMsg **out)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char tail[48], tag[3 * SB_KOP_TAG_MAX + 1];
	natsMsg *m = NULL;
	bool kop = it->kind == SB_AUX_KERNEL_OP;
	int err;

	if (!it->tag || strlen(it->tag) > SB_KOP_TAG_MAX || (!kop && !it->procs))
		return sbx__fail(-EINVAL, "aux record %" PRIu64 " has no tag or body", it->seq);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, kop ? 2 : 3);
	pack_key(&pk, "v");
	msgpack_pack_uint8(&pk, 1);
	if (kop) {
		pack_key(&pk, "reply");
		msgpack_sbuffer_write(&sb, it->msgpack, it->msgpack_len);
	} else {
		pack_key(&pk, "cgroup");
		pack_text(&pk, it->procs->cgroup);
		pack_key(&pk, "pids");
		msgpack_pack_array(&pk, it->procs->n_pids);
		for (size_t i = 0; i < it->procs->n_pids; i++)
			msgpack_pack_int32(&pk, it->procs->pids[i]);
	}
	if (!sb.data) {
		err = sbx__fail(-ENOMEM, "out of memory");
		goto out;
	}
	snprintf(tail, sizeof(tail), "aux:%" PRIu64, it->seq);
	char label[64];
	snprintf(label, sizeof(label), "aux record %" PRIu64, it->seq);
	err = check_payload(o, sb.size, label);
	if (!err)
		err = start_msg(o, kop ? "kernel_op" : "cgroup_procs", tail, sb.data, sb.size, &m);
	if (err)
		goto out;
	sbx_token_escape(it->tag, strlen(it->tag), tag);
	if (set_u64(m, H_AUX_SEQ, it->seq) || set_header(m, H_TAG, tag)) {
		natsMsg_Destroy(m);
		err = sbx__fail(-ENOMEM, "out of memory building a message");
		goto out;
	}
	*out = m;
out:
	msgpack_sbuffer_destroy(&sb);
	return err;
}

static void pack_u64_field(msgpack_packer *pk, const char *k, uint64_t v)
{
	pack_key(pk, k);
	msgpack_pack_uint64(pk, v);
}

static void pack_cursors(msgpack_packer *pk, const struct sbx_cursors *c)
{
	msgpack_pack_map(pk, 3);
	pack_u64_field(pk, "store_seq", c->store_seq);
	pack_u64_field(pk, "event_seq", c->event_seq);
	pack_u64_field(pk, "aux_seq", c->aux_seq);
}

int sbx_summary_msg(const struct sbx_origin *o, const struct sbx_summary *s, const char *run,
		    uint64_t n, natsMsg **out)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char tail[80];
	const struct sbx_counts *c = &s->counts;
	int err;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 24);
	pack_u64_field(&pk, "v", 1);
	pack_key(&pk, "at");
	pack_cursors(&pk, &s->at);
	pack_u64_field(&pk, "stores", c->rec.stores);
	pack_u64_field(&pk, "exported", c->rec.delivered);
	pack_u64_field(&pk, "superseded", c->rec.superseded);
	pack_u64_field(&pk, "evicted", c->rec.evicted);
	pack_u64_field(&pk, "lapped", c->rec.lapped);
	pack_u64_field(&pk, "torn", c->rec.torn);
	pack_u64_field(&pk, "events", c->events);
	pack_u64_field(&pk, "events_truncated", c->events_truncated);
	pack_u64_field(&pk, "aux_records", c->aux.records);
	pack_u64_field(&pk, "aux_delivered", c->aux.delivered);
	pack_u64_field(&pk, "aux_lapped", c->aux.lapped);
	pack_u64_field(&pk, "coordinator_stores", s->coordinator_stores);
	pack_key(&pk, "coordinator");
	pack_text(&pk, sb_coord_state_name(s->coordinator));
	pack_key(&pk, "final");
	if (s->final)
		msgpack_pack_true(&pk);
	else
		msgpack_pack_false(&pk);
	pack_u64_field(&pk, "published", s->published);
	pack_u64_field(&pk, "resent", s->resent);
	pack_u64_field(&pk, "duplicates", s->duplicates);
	pack_u64_field(&pk, "out_of_order", s->out_of_order);
	pack_u64_field(&pk, "late", s->late);
	pack_u64_field(&pk, "reconnects", s->reconnects);
	pack_u64_field(&pk, "time_ns", s->time_ns);
	pack_key(&pk, "run");
	pack_text(&pk, run);
	if (!sb.data) {
		msgpack_sbuffer_destroy(&sb);
		return sbx__fail(-ENOMEM, "out of memory");
	}
	snprintf(tail, sizeof(tail), "summary:%s:%" PRIu64, run, n);
	err = start_msg(o, "summary", tail, sb.data, sb.size, out);
	msgpack_sbuffer_destroy(&sb);
	return err;
}

int sbx_resume_msg(const struct sbx_origin *o, const char *run, natsMsg **out)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char tail[80];
	int err;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	pack_u64_field(&pk, "v", 1);
	pack_key(&pk, "run");
	pack_text(&pk, run);
	if (!sb.data) {
		msgpack_sbuffer_destroy(&sb);
		return sbx__fail(-ENOMEM, "out of memory");
	}
	snprintf(tail, sizeof(tail), "resume:%s", run);
	err = start_msg(o, "resume", tail, sb.data, sb.size, out);
	msgpack_sbuffer_destroy(&sb);
	return err;
}

/* ---- envelopes: decoding ----------------------------------------------------------------- */

/*
 * A cursor over msgpack bytes from the stream. Nothing is allocated and
 * nothing is read past end.
 */
struct mp {
	const uint8_t *p, *end;
};

static size_t mp_left(const struct mp *m)
{
	return (size_t)(m->end - m->p);
}

static bool mp_take(struct mp *m, size_t n, const uint8_t **at)
{
	if (mp_left(m) < n)
		return false;
	*at = m->p;
	m->p += n;
	return true;
}

static bool mp_be(struct mp *m, size_t n, uint64_t *v)
{
	const uint8_t *b;

	if (!mp_take(m, n, &b))
		return false;
	*v = 0;
	for (size_t i = 0; i < n; i++)
		*v = *v << 8 | b[i];
	return true;
}

/* Take one object's header and scalar bytes; *items: the objects nested in it. */
static bool mp_skip_head(struct mp *m, uint64_t *items)
{
	const uint8_t *b;
	uint64_t n = 0;

	*items = 0;
	if (!mp_take(m, 1, &b))
		return false;
	uint8_t t = b[0];
	if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
		return true;
	if ((t & 0xf0) == 0x80) {
		*items = 2ull * (t & 0x0f);
	} else if ((t & 0xf0) == 0x90) {
		*items = t & 0x0f;
	} else if ((t & 0xe0) == 0xa0) {
		n = t & 0x1f;
		return mp_take(m, n, &b);
	} else {
		switch (t) {
		case 0xc4:
		case 0xd9:
			if (!mp_be(m, 1, &n))
				return false;
			return mp_take(m, n, &b);
		case 0xc5:
		case 0xda:
			if (!mp_be(m, 2, &n))
				return false;
			return mp_take(m, n, &b);
		case 0xc6:
		case 0xdb:
			if (!mp_be(m, 4, &n))
				return false;
			return mp_take(m, n, &b);
		case 0xc7:
			if (!mp_be(m, 1, &n))
				return false;
			return mp_take(m, n + 1, &b);
		case 0xc8:
			if (!mp_be(m, 2, &n))
				return false;
			return mp_take(m, n + 1, &b);
		case 0xc9:
			if (!mp_be(m, 4, &n))
				return false;
			return mp_take(m, n + 1, &b);
		case 0xca:
		case 0xce:
		case 0xd2:
			return mp_take(m, 4, &b);
		case 0xcb:
		case 0xcf:
		case 0xd3:
			return mp_take(m, 8, &b);
		case 0xcc:
		case 0xd0:
			return mp_take(m, 1, &b);
		case 0xcd:
		case 0xd1:
			return mp_take(m, 2, &b);
		case 0xd4:
			return mp_take(m, 2, &b);
		case 0xd5:
			return mp_take(m, 3, &b);
		case 0xd6:
			return mp_take(m, 5, &b);
		case 0xd7:
			return mp_take(m, 9, &b);
		case 0xd8:
			return mp_take(m, 17, &b);
		case 0xdc:
			return mp_be(m, 2, items);
		case 0xdd:
			return mp_be(m, 4, items);
		case 0xde:
			if (!mp_be(m, 2, items))
				return false;
			*items *= 2;
			return true;
		case 0xdf:
			if (!mp_be(m, 4, items))
				return false;
			*items *= 2;
			return true;
		default:
			return false; /* 0xc1: never used */
		}
	}
	return true;
}

/*
 * Skip one object of any type. Iterative, like sb_msgpack_check(): the
 * region accepts a report nested at any depth, so its copy must read back.
 */
static bool mp_skip(struct mp *m)
{
	uint64_t pending = 1, items;

	while (pending) {
		pending--;
		if (!mp_skip_head(m, &items))
			return false;
		/* Each item takes a byte at least: a count beyond the bytes left is a lie. */
		if (pending + items > mp_left(m))
			return false;
		pending += items;
	}
	return true;
}

/*
 * A map (pairs = 2) or an array (pairs = 1) header: fix is its fixed
 * form's high nibble, op16 its 16-bit form (the 32-bit one follows).
 * Its count is refused beyond the bytes left (each item takes one).
 */
static bool mp_container(struct mp *m, uint8_t fix, uint8_t op16, unsigned pairs, uint32_t *n)
{
	const uint8_t *b;
	uint64_t v;

	if (!mp_take(m, 1, &b))
		return false;
	if ((b[0] & 0xf0) == fix) {
		*n = b[0] & 0x0f;
		return true;
	}
	if ((b[0] == op16 && mp_be(m, 2, &v)) || (b[0] == op16 + 1 && mp_be(m, 4, &v))) {
		*n = (uint32_t)v;
		return pairs * v <= mp_left(m);
	}
	return false;
}

static bool mp_map(struct mp *m, uint32_t *n)
{
	return mp_container(m, 0x80, 0xde, 2, n);
}

static bool mp_array(struct mp *m, uint32_t *n)
{
	return mp_container(m, 0x90, 0xdc, 1, n);
}

static bool mp_str(struct mp *m, const char **s, size_t *len)
{
	const uint8_t *b;
	uint64_t n;

	if (!mp_take(m, 1, &b))
		return false;
	if ((b[0] & 0xe0) == 0xa0)
		n = b[0] & 0x1f;
	else if (!((b[0] == 0xd9 && mp_be(m, 1, &n)) || (b[0] == 0xda && mp_be(m, 2, &n)) ||
		   (b[0] == 0xdb && mp_be(m, 4, &n))))
		return false;
	if (!mp_take(m, n, &b))
		return false;
	*s = (const char *)b;
	*len = n;
	return true;
}

static bool mp_int(struct mp *m, int64_t *v, bool *neg_ok_or_unsigned)
{
	const uint8_t *b;
	uint64_t u;

	if (!mp_take(m, 1, &b))
		return false;
	uint8_t t = b[0];
	*neg_ok_or_unsigned = true;
	if (t <= 0x7f) {
		*v = t;
		return true;
	}
	if (t >= 0xe0) {
		*v = (int8_t)t;
		return true;
	}
	/* 0xcc..0xcf: unsigned, 0xd0..0xd3: signed, 1 << (t & 3) bytes each. */
	if (t < 0xcc || t > 0xd3)
		return false;
	unsigned width = 1u << (t & 3);
	if (!mp_be(m, (int)width, &u))
		return false;
	if (t <= 0xcf) {
		*v = (int64_t)u;
		*neg_ok_or_unsigned = u <= INT64_MAX;
	} else {
		unsigned shift = 64 - 8 * width; /* sign-extend from the top bit of its width */
		*v = (int64_t)(u << shift) >> shift;
	}
	return true;
}

static bool mp_u64(struct mp *m, uint64_t *v)
{
	const uint8_t *save = m->p;
	int64_t s;
	bool ok;

	if (mp_left(m) && m->p[0] == 0xcf) {
		m->p++;
		return mp_be(m, 8, v);
	}
	if (!mp_int(m, &s, &ok) || s < 0) {
		m->p = save;
		return false;
	}
	*v = (uint64_t)s;
	return true;
}

/* A bin object: its payload at *at, *len bytes. */
static bool mp_bin(struct mp *m, const void **at, size_t *len)
{
	const uint8_t *b, *payload;
	uint64_t n;

	if (!mp_take(m, 1, &b) || b[0] < 0xc4 || b[0] > 0xc6)
		return false;
	size_t width = (size_t)1 << (b[0] - 0xc4); /* c4: 1 byte, c5: 2, c6: 4 */
	if (!mp_be(m, width, &n) || !mp_take(m, n, &payload))
		return false;
	*at = payload;
	*len = n;
	return true;
}

static bool mp_bool(struct mp *m, bool *v)
{
	const uint8_t *b;

	if (!mp_take(m, 1, &b) || (b[0] != 0xc2 && b[0] != 0xc3))
		return false;
	*v = b[0] == 0xc3;
	return true;
}

static bool mp_is_nil(const struct mp *m)
{
	return mp_left(m) && m->p[0] == 0xc0;
}

static bool key_is(const char *k, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(k, want, n) == 0;
}

/* ---- decoding a message ------------------------------------------------------------------ */

struct dec {
	natsMsg *msg;
	const char *subject;
	uint64_t sseq;
	struct sbx_msg *out;
};

static int bad(const struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(const struct dec *d, const char *fmt, ...)
{
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (d->sseq)
		return sbx__fail(-EBADMSG,
				 "message %" PRIu64 " on %.200s is not a snapbridge export: %s",
				 d->sseq, d->subject, why);
	return sbx__fail(-EBADMSG, "a message on %.200s is not a snapbridge export: %s", d->subject,
			 why);
}

static const char *header(const struct dec *d, const char *key)
{
	const char *v = NULL;

	return natsMsgHeader_Get(d->msg, key, &v) == NATS_OK ? v : NULL;
}

static int header_u64(const struct dec *d, const char *key, bool required, bool *has, uint64_t *v)
{
	const char *s = header(d, key);

	if (has)
		*has = s != NULL;
	if (!s)
		return required ? bad(d, "no %s header", key) : 0;
	if (!parse_u64(s, v))
		return bad(d, "%s is \"%.40s\", not a decimal", key, s);
	return 0;
}

/* "k1=v1 k2=v2 ...": exactly the keys named, in that order. */
static int counts_parse(const struct dec *d, const char *keys[], uint64_t *vals[], int n)
{
	const char *s = header(d, H_COUNTS);
	char buf[256];

	if (!s)
		return bad(d, "no %s header", H_COUNTS);
	if (strlen(s) >= sizeof(buf))
		return bad(d, "%s is too long", H_COUNTS);
	strcpy(buf, s);
	char *save = NULL, *tok = strtok_r(buf, " ", &save);
	for (int i = 0; i < n; i++, tok = strtok_r(NULL, " ", &save)) {
		size_t kl = strlen(keys[i]);

		if (!tok || strncmp(tok, keys[i], kl) != 0 || tok[kl] != '=' ||
		    !parse_u64(tok + kl + 1, vals[i]))
			return bad(d, "%s \"%.80s\" does not hold %s=N", H_COUNTS, s, keys[i]);
	}
	if (tok)
		return bad(d, "%s \"%.80s\" has more than it should", H_COUNTS, s);
	return 0;
}

static int decode_missing(const struct dec *d, struct mp *m, struct sb_missing *ms, char *text)
{
	uint32_t n;
	const char *k, *s;
	size_t kl, sl;
	bool have_kind = false;

	memset(ms, 0, sizeof(*ms));
	if (!mp_map(m, &n) || n == 0 || n > 3)
		return bad(d, "stats is neither a document nor a missing reason");
	for (uint32_t i = 0; i < n; i++) {
		if (!mp_str(m, &k, &kl))
			return bad(d, "a missing reason with a non-string key");
		if (key_is(k, kl, "missing")) {
			if (!mp_str(m, &s, &sl))
				return bad(d, "\"missing\" is not a name");
			for (int kind = SB_MISSING_NO_SCHEDULER_BINARY;
			     kind <= SB_MISSING_MUTEX_POISONED; kind++) {
				const char *name = sb_missing_kind_name((enum sb_missing_kind)kind);

				if (name && key_is(s, sl, name)) {
					ms->kind = (enum sb_missing_kind)kind;
					have_kind = true;
				}
			}
			if (!have_kind)
				return bad(d, "unknown missing reason \"%.*s\"",
					   (int)(sl > 40 ? 40 : sl), s);
		} else if (key_is(k, kl, "reason") || key_is(k, kl, "args")) {
			if (!mp_str(m, &s, &sl) || sl > SB_REASON_MAX || memchr(s, 0, sl))
				return bad(d, "a missing reason's text is not a short string");
			memcpy(text, s, sl);
			text[sl] = '\0';
			ms->text = text;
		} else if (key_is(k, kl, "errno")) {
			int64_t v;
			bool ok;

			if (!mp_int(m, &v, &ok) || v < INT32_MIN || v > INT32_MAX)
				return bad(d, "a missing reason's errno is not an int32");
			ms->err = (int32_t)v;
		} else if (key_is(k, kl, "size")) {
			if (!mp_u64(m, &ms->size))
				return bad(d, "a missing reason's size is not a number");
		} else if (key_is(k, kl, "max")) {
			if (!mp_u64(m, &ms->max))
				return bad(d, "a missing reason's max is not a number");
		} else {
			return bad(d, "a missing reason with key \"%.*s\"",
				   (int)(kl > 40 ? 40 : kl), k);
		}
	}
	return have_kind ? 0 : bad(d, "a missing reason without \"missing\"");
}

static int decode_tag_header(const struct dec *d, char *out, size_t cap)
{
	const char *t = header(d, H_TAG);
	size_t n;

	if (!t)
		return bad(d, "no %s header", H_TAG);
	if (sbx_token_unescape(t, strlen(t), out, cap, &n))
		return bad(d, "%s: %s", H_TAG, sbx_last_error());
	return 0;
}

static int decode_snap(struct dec *d, const char *tag_tok)
{
	struct sbx_msg *o = d->out;
	struct sb_entry *e = &o->entry;
	const char *tag = header(d, H_TAG);
	uint64_t v;
	bool has;
	int err;

	if (!tag || strcmp(tag, tag_tok) != 0)
		return bad(d, "its %s header does not match the subject", H_TAG);
	if ((err = decode_tag_header(d, e->tag, sizeof(e->tag))))
		return err;
	if ((err = header_u64(d, H_STORE_SEQ, true, NULL, &e->store_seq)))
		return err;
	if (e->store_seq == 0)
		return bad(d, "store_seq 0");
	o->seq = e->store_seq;
	const char *schema = header(d, H_SCHEMA);
	if (schema) {
		size_t n;

		if (sbx_token_unescape(schema, strlen(schema), e->schema, sizeof(e->schema), &n))
			return bad(d, "%s: %s", H_SCHEMA, sbx_last_error());
	}
	const char *ph = header(d, H_PLACEHOLDER);
	if (!ph || (strcmp(ph, "true") && strcmp(ph, "false")))
		return bad(d, "%s is not true or false", H_PLACEHOLDER);
	e->placeholder = ph[0] == 't';
	if ((err = header_u64(d, H_ELAPSED, false, &e->meta.has_elapsed, &e->meta.elapsed_ms)) ||
	    (err = header_u64(d, H_BOUNDARY, false, &e->meta.has_boundary,
			      &e->meta.boundary_offset_ms)) ||
	    (err = header_u64(d, H_STEP, false, &has, &v)))
		return err;
	if (has && v > UINT16_MAX)
		return bad(d, "%s %" PRIu64 " is over 65535", H_STEP, v);
	e->meta.has_step = has;
	e->meta.step_index = has ? (uint16_t)v : 0; /* v is unset without the header */
	const char *stats = header(d, H_STATS);
	if (!stats)
		return bad(d, "no %s header", H_STATS);
	if (!strcmp(stats, "ok"))
		e->stats.kind = SB_STATS_OK;
	else if (!strcmp(stats, "missing"))
		e->stats.kind = SB_STATS_MISSING;
	else if (!strcmp(stats, "absent"))
		e->stats.kind = SB_STATS_ABSENT;
	else
		return bad(d, "%s is \"%.20s\"", H_STATS, stats);
	/* Bytes the region held that are not msgpack come as a bin (sbx_snap_msg). */
	const char *raw = header(d, H_RAW);
	bool raw_report = false, raw_stats = false;
	if (raw) {
		raw_report = !strcmp(raw, "report") || !strcmp(raw, "report stats");
		raw_stats = !strcmp(raw, "stats") || !strcmp(raw, "report stats");
		if ((!raw_report && !raw_stats) || (raw_stats && e->stats.kind != SB_STATS_OK))
			return bad(d, "%s is \"%.20s\"", H_RAW, raw);
	}
	const char *ck[] = { "stores", "exported", "superseded", "evicted", "lapped", "torn" };
	struct sb_drain_counts *c = &o->counts.rec;
	uint64_t *cv[] = { &c->stores,	&c->delivered, &c->superseded,
			   &c->evicted, &c->lapped,    &c->torn };
	if ((err = counts_parse(d, ck, cv, 6)))
		return err;
	if (c->delivered + c->superseded + c->evicted + c->lapped + c->torn != c->stores)
		return bad(d, "its counts do not add up");
	o->has_counts = true;

	/* The envelope: {"v": 1, "report": R, "stats": S | nil}. */
	struct mp m = { natsMsg_GetData(d->msg) ? (const uint8_t *)natsMsg_GetData(d->msg)
						: (const uint8_t *)"",
			0 };
	m.end = m.p + natsMsg_GetDataLength(d->msg);
	uint32_t n;
	bool seen_v = false, seen_r = false, seen_s = false;
	if (!mp_map(&m, &n) || n != 3)
		return bad(d, "its body is not the 3-key envelope");
	for (uint32_t i = 0; i < n; i++) {
		const char *k;
		size_t kl;

		if (!mp_str(&m, &k, &kl))
			return bad(d, "an envelope key is not a string");
		if (key_is(k, kl, "v") && !seen_v) {
			seen_v = true;
			if (!mp_u64(&m, &v) || v != 1)
				return bad(d, "envelope version is not 1");
		} else if (key_is(k, kl, "report") && !seen_r) {
			seen_r = true;
			const uint8_t *at = m.p;
			if (raw_report) {
				if (!mp_bin(&m, &e->report, &e->report_len))
					return bad(d, "the raw report is not a bin");
			} else {
				if (!mp_skip(&m))
					return bad(d, "the report is not one msgpack object");
				e->report = at;
				e->report_len = (size_t)(m.p - at);
			}
		} else if (key_is(k, kl, "stats") && !seen_s) {
			seen_s = true;
			const uint8_t *at = m.p;
			if (e->stats.kind == SB_STATS_MISSING) {
				if ((err = decode_missing(d, &m, &e->stats.missing, o->text)))
					return err;
			} else if (e->stats.kind == SB_STATS_ABSENT) {
				if (!mp_is_nil(&m))
					return bad(d, "stats absent but the envelope has some");
				m.p++;
			} else if (raw_stats) {
				if (!mp_bin(&m, &e->stats.msgpack, &e->stats.msgpack_len))
					return bad(d, "the raw stats are not a bin");
			} else {
				if (!mp_skip(&m))
					return bad(d, "the stats are not one msgpack object");
				e->stats.msgpack = at;
				e->stats.msgpack_len = (size_t)(m.p - at);
			}
		} else {
			return bad(d, "an envelope key \"%.*s\" unknown or repeated",
				   (int)(kl > 40 ? 40 : kl), k);
		}
	}
	if (m.p != m.end)
		return bad(d, "%zu bytes after the envelope", mp_left(&m));
	return 0;
}

static int decode_event(struct dec *d)
{
	struct sbx_msg *o = d->out;
	struct sb_event *ev = &o->event;
	int err;

	if ((err = header_u64(d, H_EVENT_SEQ, true, NULL, &o->seq)))
		return err;
	const char *ck[] = { "events", "truncated" };
	uint64_t *cv[] = { &o->counts.events, &o->counts.events_truncated };
	if ((err = counts_parse(d, ck, cv, 2)))
		return err;
	o->has_counts = true;
	struct mp m = { (const uint8_t *)natsMsg_GetData(d->msg), NULL };
	m.end = m.p + natsMsg_GetDataLength(d->msg);
	uint32_t n;
	unsigned seen = 0;
	if (!m.p || !mp_map(&m, &n) || n != 7)
		return bad(d, "an event body is not the 7-key map");
	for (uint32_t i = 0; i < n; i++) {
		const char *k, *s;
		size_t kl, sl;
		unsigned bit;

		if (!mp_str(&m, &k, &kl))
			return bad(d, "an event key is not a string");
		if (key_is(k, kl, "kind")) {
			bit = 1;
			bool found = false;
			if (!mp_str(&m, &s, &sl))
				return bad(d, "event kind is not a string");
			for (int kind = SB_EVENT_CAPTURE_UNAVAILABLE;
			     kind <= SB_EVENT_LOG_TRUNCATED; kind++)
				if (key_is(s, sl, sb_event_kind_name((enum sb_event_kind)kind))) {
					ev->kind = (enum sb_event_kind)kind;
					found = true;
				}
			if (!found)
				return bad(d, "unknown event kind");
		} else if (key_is(k, kl, "seq")) {
			bit = 2;
			if (!mp_u64(&m, &ev->seq))
				return bad(d, "event seq is not a number");
		} else if (key_is(k, kl, "tag") || key_is(k, kl, "detail")) {
			bool is_tag = kl == 3;
			bit = is_tag ? 4 : 8;
			char *dst = is_tag ? ev->tag : ev->detail;
			if (!mp_str(&m, &s, &sl) || sl > SB_TAG_MAX || memchr(s, 0, sl))
				return bad(d, "event %s is not a short string",
					   is_tag ? "tag" : "detail");
			memcpy(dst, s, sl);
			dst[sl] = '\0';
		} else if (key_is(k, kl, "cap")) {
			bit = 16;
			if (!mp_u64(&m, &ev->cap))
				return bad(d, "event cap is not a number");
		} else if (key_is(k, kl, "count")) {
			bit = 32;
			if (!mp_u64(&m, &ev->count))
				return bad(d, "event count is not a number");
		} else if (key_is(k, kl, "cause")) {
			bit = 64;
			if (!mp_str(&m, &s, &sl) ||
			    !(key_is(s, sl, "cap") || key_is(s, sl, "bytes")))
				return bad(d, "event cause is neither cap nor bytes");
			ev->cause = sl == 5 ? SB_EVICT_BYTES : SB_EVICT_CAP;
		} else {
			return bad(d, "unknown event key");
		}
		if (seen & bit)
			return bad(d, "a repeated event key");
		seen |= bit;
	}
	if (m.p != m.end)
		return bad(d, "bytes after the event body");
	if ((ev->kind == SB_EVENT_LOG_TRUNCATED) != (ev->seq == 0) ||
	    (ev->seq && ev->seq != o->seq))
		return bad(d, "event seq %" PRIu64 " does not match its header", ev->seq);
	return 0;
}

static int decode_aux(struct dec *d)
{
	struct sbx_msg *o = d->out;
	struct sb_aux_item *it = &o->aux;
	int err;

	it->kind = o->kind == SBX_KERNEL_OP ? SB_AUX_KERNEL_OP : SB_AUX_CGROUP_PROCS;
	if ((err = header_u64(d, H_AUX_SEQ, true, NULL, &o->seq)))
		return err;
	if (o->seq == 0)
		return bad(d, "aux seq 0");
	it->seq = o->seq;
	const char *ck[] = { "records", "delivered", "lapped" };
	uint64_t *cv[] = { &o->counts.aux.records, &o->counts.aux.delivered,
			   &o->counts.aux.lapped };
	if ((err = counts_parse(d, ck, cv, 3)))
		return err;
	o->has_counts = true;
	/* The tag can be longer than an entry's: it lives in text. */
	if ((err = decode_tag_header(d, o->text, SB_KOP_TAG_MAX + 1)))
		return err;
	it->tag = o->text;

	struct mp m = { (const uint8_t *)natsMsg_GetData(d->msg), NULL };
	m.end = m.p + natsMsg_GetDataLength(d->msg);
	uint32_t n;
	uint64_t v;
	bool seen_v = false, seen_body = false, seen_cg = false;
	size_t want = it->kind == SB_AUX_KERNEL_OP ? 2 : 3;
	if (!m.p || !mp_map(&m, &n) || n != want)
		return bad(d, "an aux body is not the %zu-key envelope", want);
	for (uint32_t i = 0; i < n; i++) {
		const char *k, *s;
		size_t kl, sl;

		if (!mp_str(&m, &k, &kl))
			return bad(d, "an aux key is not a string");
		if (key_is(k, kl, "v") && !seen_v) {
			seen_v = true;
			if (!mp_u64(&m, &v) || v != 1)
				return bad(d, "aux envelope version is not 1");
		} else if (it->kind == SB_AUX_KERNEL_OP && key_is(k, kl, "reply") && !seen_body) {
			seen_body = true;
			const uint8_t *at = m.p;
			if (!mp_skip(&m))
				return bad(d, "the reply is not one msgpack object");
			it->msgpack = at;
			it->msgpack_len = (size_t)(m.p - at);
			if (sb_kop_reply_decode(at, it->msgpack_len, &o->reply))
				return bad(d, "the reply does not decode: %s", sb_last_error());
			it->reply = o->reply;
		} else if (it->kind == SB_AUX_CGROUP_PROCS && key_is(k, kl, "cgroup") && !seen_cg) {
			seen_cg = true;
			if (!mp_str(&m, &s, &sl) || sl == 0 || sl > SB_CGROUP_NAME_MAX ||
			    memchr(s, 0, sl))
				return bad(d, "cgroup is not a name");
			o->procs.cgroup = strndup(s, sl);
			if (!o->procs.cgroup)
				return sbx__fail(-ENOMEM, "out of memory");
		} else if (it->kind == SB_AUX_CGROUP_PROCS && key_is(k, kl, "pids") && !seen_body) {
			seen_body = true;
			const uint8_t *at = m.p;
			uint32_t np;
			if (!mp_array(&m, &np) || np > SB_CGROUP_PIDS_MAX)
				return bad(d, "pids is not a bounded array");
			o->procs.pids = calloc(np ? np : 1, sizeof(int32_t));
			if (!o->procs.pids)
				return sbx__fail(-ENOMEM, "out of memory");
			for (uint32_t j = 0; j < np; j++) {
				int64_t pid;
				bool ok;

				if (!mp_int(&m, &pid, &ok) || pid < INT32_MIN || pid > INT32_MAX)
					return bad(d, "a pid is not an int32");
				o->procs.pids[j] = (int32_t)pid;
			}
			o->procs.n_pids = np;
			it->msgpack = at;
			it->msgpack_len = (size_t)(m.p - at);
		} else {
			return bad(d, "an aux key \"%.*s\" unknown or repeated",
				   (int)(kl > 40 ? 40 : kl), k);
		}
	}
	if (m.p != m.end)
		return bad(d, "bytes after the aux body");
	if (it->kind == SB_AUX_CGROUP_PROCS) {
		o->procs.tag = o->text;
		it->procs = &o->procs;
	}
	return 0;
}

static int decode_cursors(const struct dec *d, struct mp *m, struct sbx_cursors *c)
{
	uint32_t n;
	unsigned seen = 0;

	if (!mp_map(m, &n) || n != 3)
		return bad(d, "cursors are not a 3-key map");
	for (uint32_t i = 0; i < n; i++) {
		const char *k;
		size_t kl;
		uint64_t *dst;
		unsigned bit;

		if (!mp_str(m, &k, &kl))
			return bad(d, "a cursor key is not a string");
		if (key_is(k, kl, "store_seq"))
			dst = &c->store_seq, bit = 1;
		else if (key_is(k, kl, "event_seq"))
			dst = &c->event_seq, bit = 2;
		else if (key_is(k, kl, "aux_seq"))
			dst = &c->aux_seq, bit = 4;
		else
			return bad(d, "unknown cursor key");
		if ((seen & bit) || !mp_u64(m, dst))
			return bad(d, "a repeated or non-numeric cursor");
		seen |= bit;
	}
	return 0;
}

static int decode_summary(struct dec *d)
{
	struct sbx_msg *o = d->out;
	struct sbx_summary *s = &o->summary;
	struct sbx_counts *c = &s->counts;
	struct mp m = { (const uint8_t *)natsMsg_GetData(d->msg), NULL };
	const struct {
		const char *key;
		uint64_t *dst;
	} nums[] = {
		{ "stores", &c->rec.stores },
		{ "exported", &c->rec.delivered },
		{ "superseded", &c->rec.superseded },
		{ "evicted", &c->rec.evicted },
		{ "lapped", &c->rec.lapped },
		{ "torn", &c->rec.torn },
		{ "events", &c->events },
		{ "events_truncated", &c->events_truncated },
		{ "aux_records", &c->aux.records },
		{ "aux_delivered", &c->aux.delivered },
		{ "aux_lapped", &c->aux.lapped },
		{ "coordinator_stores", &s->coordinator_stores },
		{ "published", &s->published },
		{ "resent", &s->resent },
		{ "duplicates", &s->duplicates },
		{ "out_of_order", &s->out_of_order },
		{ "late", &s->late },
		{ "reconnects", &s->reconnects },
		{ "time_ns", &s->time_ns },
	};
	const size_t nnums = sizeof(nums) / sizeof(nums[0]);
	uint64_t seen = 0, v;
	uint32_t n;
	int err;

	m.end = m.p + natsMsg_GetDataLength(d->msg);
	if (!m.p || !mp_map(&m, &n) || n != nnums + 5)
		return bad(d, "a summary body is not the %zu-key map", nnums + 5);
	for (uint32_t i = 0; i < n; i++) {
		const char *k, *str;
		size_t kl, sl;
		unsigned bit = 0;

		if (!mp_str(&m, &k, &kl))
			return bad(d, "a summary key is not a string");
		for (size_t j = 0; j < nnums && !bit; j++)
			if (key_is(k, kl, nums[j].key)) {
				bit = (unsigned)j + 1;
				if (!mp_u64(&m, nums[j].dst))
					return bad(d, "summary %s is not a number", nums[j].key);
			}
		if (bit) {
		} else if (key_is(k, kl, "v")) {
			bit = 40;
			if (!mp_u64(&m, &v) || v != 1)
				return bad(d, "summary version is not 1");
		} else if (key_is(k, kl, "at")) {
			bit = 41;
			if ((err = decode_cursors(d, &m, &s->at)))
				return err;
		} else if (key_is(k, kl, "coordinator")) {
			bit = 42;
			if (!mp_str(&m, &str, &sl))
				return bad(d, "summary coordinator is not a string");
			if (key_is(str, sl, "alive"))
				s->coordinator = SB_COORD_ALIVE;
			else if (key_is(str, sl, "closed"))
				s->coordinator = SB_COORD_CLOSED;
			else if (key_is(str, sl, "dead"))
				s->coordinator = SB_COORD_DEAD;
			else
				return bad(d, "summary coordinator state unknown");
		} else if (key_is(k, kl, "final")) {
			bit = 43;
			if (!mp_bool(&m, &s->final))
				return bad(d, "summary final is not a bool");
		} else if (key_is(k, kl, "run")) {
			bit = 44;
			if (!mp_str(&m, &str, &sl) || sl > 64)
				return bad(d, "summary run is not a short string");
		} else {
			return bad(d, "unknown summary key \"%.*s\"", (int)(kl > 40 ? 40 : kl), k);
		}
		if (seen & (1ull << bit))
			return bad(d, "a repeated summary key");
		seen |= 1ull << bit;
	}
	if (m.p != m.end)
		return bad(d, "bytes after the summary");
	const struct sb_drain_counts *r = &c->rec;
	if (r->delivered + r->superseded + r->evicted + r->lapped + r->torn != r->stores)
		return bad(d, "its counts do not add up");
	o->seq = s->at.store_seq;
	return 0;
}

static int decode_resume(struct dec *d)
{
	struct mp m = { (const uint8_t *)natsMsg_GetData(d->msg), NULL };
	uint32_t n;
	uint64_t v;
	bool seen_v = false, seen_run = false;

	m.end = m.p + natsMsg_GetDataLength(d->msg);
	if (!m.p || !mp_map(&m, &n) || n != 2)
		return bad(d, "a resume body is not the 2-key map");
	for (uint32_t i = 0; i < n; i++) {
		const char *k, *s;
		size_t kl, sl;

		if (!mp_str(&m, &k, &kl))
			return bad(d, "a resume key is not a string");
		if (key_is(k, kl, "v") && !seen_v) {
			seen_v = true;
			if (!mp_u64(&m, &v) || v != 1)
				return bad(d, "resume version is not 1");
		} else if (key_is(k, kl, "run") && !seen_run) {
			seen_run = true;
			if (!mp_str(&m, &s, &sl))
				return bad(d, "resume run is not a string");
		} else {
			return bad(d, "a resume key unknown or repeated");
		}
	}
	return m.p == m.end ? 0 : bad(d, "bytes after the resume body");
}

int sbx_msg_decode(natsMsg *msg, const char *prefix, struct sbx_msg *out)
{
	struct dec d = { msg, natsMsg_GetSubject(msg), 0, out };
	const char *subj = d.subject ? d.subject : "";
	size_t pl = strlen(prefix), n;
	int err;

	memset(out, 0, sizeof(*out));
	d.sseq = natsMsg_GetSequence(msg);
	if (!d.sseq) {
		/* Delivered by a consumer rather than fetched: the sequence is in its metadata. */
		jsMsgMetaData *meta = NULL;

		if (natsMsg_GetMetaData(&meta, msg) == NATS_OK && meta)
			d.sseq = meta->Sequence.Stream;
		jsMsgMetaData_Destroy(meta);
	}
	out->stream_seq = d.sseq;
	if (strncmp(subj, prefix, pl) != 0 || subj[pl] != '.')
		return bad(&d, "the subject does not start with \"%s.\"", prefix);
	const char *host_tok = subj + pl + 1, *dot = strchr(host_tok, '.');
	if (!dot)
		return bad(&d, "no kind after the host");
	if (sbx_token_unescape(host_tok, (size_t)(dot - host_tok), out->host, sizeof(out->host),
			       &n))
		return bad(&d, "host token: %s", sbx_last_error());
	const char *what = dot + 1, *tag_tok = NULL;
	if (!strncmp(what, "snap.", 5) && what[5]) {
		out->kind = SBX_SNAP;
		tag_tok = what + 5;
	} else {
		for (int k = SBX_EVENT; k <= SBX_RESUME; k++)
			if (!strcmp(what, kind_names[k]))
				out->kind = (enum sbx_kind)k;
		if (!out->kind)
			return bad(&d, "unknown kind \"%.40s\"", what);
	}
	const char *host = header(&d, H_HOST);
	if (!host || strcmp(host, out->host) != 0)
		return bad(&d, "its %s header does not match the subject", H_HOST);
	if (!region_parse(header(&d, H_REGION), out->region))
		return bad(&d, "no %s header of 32 hex digits", H_REGION);
	switch (out->kind) {
	case SBX_SNAP:
		err = decode_snap(&d, tag_tok);
		break;
	case SBX_EVENT:
		err = decode_event(&d);
		break;
	case SBX_KERNEL_OP:
	case SBX_CGROUP_PROCS:
		err = decode_aux(&d);
		break;
	case SBX_SUMMARY:
		err = decode_summary(&d);
		break;
	default:
		err = decode_resume(&d);
		break;
	}
	if (err) {
		char keep[512];

		snprintf(keep, sizeof(keep), "%s", sbx_last_error());
		out->raw = NULL;
		sbx_msg_free(out);
		return sbx__fail(err, "%s", keep);
	}
	out->raw = msg;
	return 0;
}

void sbx_msg_free(struct sbx_msg *m)
{
	if (!m)
		return;
	sb_kop_reply_free(m->reply);
	free(m->procs.cgroup);
	free(m->procs.pids);
	natsMsg_Destroy(m->raw);
	memset(m, 0, sizeof(*m));
}
