/*
 * consumers/export/reader.c - the export read back: every message of a
 * stream under "<prefix>.<host>." in stream order (drain --nats), and a
 * per-host view of the stream without reading it through (stat --nats).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "export.h"
#include "wire.h"

struct sbx_reader {
	struct sbx_conn conn;
	natsSubscription *sub;
	bool follow, done;
	uint64_t last_at_open; /* the stream sequence of the newest matching message at open */
	char filter[SBX_PREFIX_MAX + 3 * SBX_HOST_MAX + 8];
};

/* How long a one-shot read waits for the next message it knows is there. */
#define ONE_SHOT_WAIT_MS 10000

static int open_conn(const struct sbx_reader_config *cfg, struct sbx_conn *conn, char *filter,
		     size_t n)
{
	const char *host = cfg->host ? cfg->host : "*";
	struct sbx_conn_config cc = {
		.target = &cfg->target,
		.host = host,
		.connect_ms = 5000,
		/* Short requests, retried: one may land on a peer that just died. */
		.api_wait_ms = 2000,
		.retry_ms = cfg->connect_ms ? cfg->connect_ms : 30000,
	};
	int err;

	if (cfg->host && (err = sbx_host_check(cfg->host)))
		return err;
	err = sbx_conn_open(&cc, conn);
	if (err)
		return err;
	sbx__host_subject(conn->prefix, host, filter, n - 2);
	strcat(filter, ">");
	return 0;
}

int sbx_reader_open(const struct sbx_reader_config *cfg, struct sbx_reader **out)
{
	struct sbx_reader *r = calloc(1, sizeof(*r));
	int err;

	*out = NULL;
	if (!r)
		return sbx__fail(-ENOMEM, "out of memory");
	r->follow = cfg->follow;
	err = open_conn(cfg, &r->conn, r->filter, sizeof(r->filter));
	if (err) {
		free(r);
		return err;
	}
	natsMsg *last = NULL;
	jsErrCode ec = 0;
	uint64_t until = sbx__now_ms() + (cfg->connect_ms ? cfg->connect_ms : 30000);
	natsStatus s;
	/* A cluster that is electing leaders answers "try again" for a while. */
	while ((s = js_GetLastMsg(&last, r->conn.js, r->conn.stream, r->filter, NULL, &ec)) !=
		   NATS_OK &&
	       s != NATS_NOT_FOUND && sbx__now_ms() < until)
		usleep(100000);
	if (s == NATS_OK) {
		r->last_at_open = natsMsg_GetSequence(last);
		natsMsg_Destroy(last);
	} else if (s != NATS_NOT_FOUND) {
		sbx_reader_close(r);
		return sbx__fail(-EIO, "cannot read stream %s: %s", cfg->target.stream,
				 natsStatus_GetText(s));
	}
	if (!r->last_at_open && !r->follow) {
		r->done = true; /* nothing there */
		*out = r;
		return 0;
	}
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = r->conn.stream;
	so.Ordered = true; /* stream order, gaps re-fetched by the library */
	so.Config.DeliverPolicy = js_DeliverAll;
	while ((s = js_SubscribeSync(&r->sub, r->conn.js, r->filter, NULL, &so, &ec)) != NATS_OK &&
	       sbx__now_ms() < until) {
		r->sub = NULL;
		usleep(100000);
	}
	if (s != NATS_OK) {
		const char *why = nats_GetLastError(NULL);

		r->sub = NULL;
		sbx_reader_close(r);
		return sbx__fail(-EIO, "cannot subscribe to %s in stream %s: %s", r->filter,
				 cfg->target.stream, why && *why ? why : natsStatus_GetText(s));
	}
	*out = r;
	return 0;
}

int sbx_reader_next(struct sbx_reader *r, int timeout_ms, struct sbx_msg *out)
{
	natsMsg *msg = NULL;

	if (r->done)
		return 1;
	int wait = r->follow ? timeout_ms : ONE_SHOT_WAIT_MS;
	natsStatus s = natsSubscription_NextMsg(&msg, r->sub, wait);
	if (s == NATS_TIMEOUT) {
		if (r->follow)
			return 1;
		return sbx__fail(-EIO,
				 "stream %s stopped delivering before message %" PRIu64
				 " (nothing for %d ms)",
				 r->conn.stream, r->last_at_open, wait);
	}
	if (s != NATS_OK)
		return sbx__fail(-EIO, "cannot read stream %s: %s", r->conn.stream,
				 natsStatus_GetText(s));
	int err = sbx_msg_decode(msg, r->conn.prefix, out);
	if (err) {
		natsMsg_Destroy(msg);
		return err;
	}
	if (!r->follow && out->stream_seq >= r->last_at_open)
		r->done = true;
	return 0;
}

void sbx_reader_close(struct sbx_reader *r)
{
	if (!r)
		return;
	if (r->sub) {
		natsSubscription_Unsubscribe(r->sub);
		natsSubscription_Destroy(r->sub);
	}
	sbx_conn_close(&r->conn);
	free(r);
}

/* ---- stat ------------------------------------------------------------------------------- */

static struct sbx_host_stat *host_slot(struct sbx_stream_stat *st, const char *host)
{
	for (size_t i = 0; i < st->n; i++)
		if (!strcmp(st->hosts[i].host, host))
			return &st->hosts[i];
	struct sbx_host_stat *h = realloc(st->hosts, (st->n + 1) * sizeof(*h));
	if (!h)
		return NULL;
	st->hosts = h;
	h = &st->hosts[st->n++];
	memset(h, 0, sizeof(*h));
	snprintf(h->host, sizeof(h->host), "%s", host);
	return h;
}

/* "<prefix>.<host>.<kind>[.<tag>]" into host and kind; false for anything else. */
static bool split_subject(const char *prefix, const char *subj, char *host, enum sbx_kind *kind)
{
	size_t pl = strlen(prefix), n;

	if (strncmp(subj, prefix, pl) || subj[pl] != '.')
		return false;
	const char *h = subj + pl + 1, *dot = strchr(h, '.');
	if (!dot || sbx_token_unescape(h, (size_t)(dot - h), host, SBX_HOST_MAX + 1, &n))
		return false;
	const char *what = dot + 1;
	if (!strncmp(what, "snap.", 5)) {
		*kind = SBX_SNAP;
		return true;
	}
	for (int k = SBX_EVENT; k <= SBX_RESUME; k++)
		if (!strcmp(what, sbx__kind_name((enum sbx_kind)k))) {
			*kind = (enum sbx_kind)k;
			return true;
		}
	return false;
}

/* The host's newest accounting: the later of its last summary and its last snapshot. */
static int host_state(struct sbx_conn *conn, struct sbx_host_stat *h)
{
	char subject[SBX_PREFIX_MAX + 3 * SBX_HOST_MAX + 32];
	struct sbx_msg sum, snap;
	int rs, rn;

	sbx__host_subject(conn->prefix, h->host, subject, sizeof(subject) - 16);
	strcat(subject, "summary");
	rs = sbx_conn_last(conn, subject, &sum);
	if (rs < 0)
		return rs;
	sbx__host_subject(conn->prefix, h->host, subject, sizeof(subject) - 16);
	strcat(subject, "snap.>");
	rn = sbx_conn_last(conn, subject, &snap);
	if (rn < 0) {
		if (rs == 0)
			sbx_msg_free(&sum);
		return rn;
	}
	/* The region of whichever came last in the stream is the host's current one. */
	bool use_snap = rn == 0 && (rs != 0 || snap.stream_seq > sum.stream_seq);
	if (rs == 0 && (!use_snap || !memcmp(sum.region, snap.region, SB_REGION_ID_BYTES))) {
		h->has_summary = true;
		h->summary = sum.summary;
		h->has_state = true;
		memcpy(h->region, sum.region, SB_REGION_ID_BYTES);
		h->at = sum.summary.at;
		h->counts = sum.summary.counts;
	}
	if (rn == 0 && (use_snap || !memcmp(sum.region, snap.region, SB_REGION_ID_BYTES))) {
		h->last_store = snap.seq;
		if (!h->has_state || snap.seq > h->at.store_seq) {
			h->has_state = true;
			memcpy(h->region, snap.region, SB_REGION_ID_BYTES);
			h->at.store_seq = snap.seq;
			h->counts.rec = snap.counts.rec;
		}
	}
	if (rs == 0)
		sbx_msg_free(&sum);
	if (rn == 0)
		sbx_msg_free(&snap);
	return 0;
}

int sbx_stream_stat(const struct sbx_reader_config *cfg, struct sbx_stream_stat *out)
{
	struct sbx_conn conn;
	char filter[SBX_PREFIX_MAX + 3 * SBX_HOST_MAX + 8];
	jsStreamInfo *si = NULL;
	jsErrCode ec = 0;
	jsOptions o;
	int err;

	memset(out, 0, sizeof(*out));
	err = open_conn(cfg, &conn, filter, sizeof(filter));
	if (err)
		return err;
	jsOptions_Init(&o);
	o.Stream.Info.SubjectsFilter = filter;
	natsStatus s = js_GetStreamInfo(&si, conn.js, conn.stream, &o, &ec);
	if (s != NATS_OK) {
		sbx_conn_close(&conn);
		return sbx__fail(-EIO, "cannot read stream %s: %s", conn.stream,
				 natsStatus_GetText(s));
	}
	out->messages = si->State.Msgs;
	out->bytes = si->State.Bytes;
	out->first_seq = si->State.FirstSeq;
	out->last_seq = si->State.LastSeq;
	for (int i = 0; si->State.Subjects && i < si->State.Subjects->Count; i++) {
		const jsStreamStateSubject *ss = &si->State.Subjects->List[i];
		char host[SBX_HOST_MAX + 1];
		enum sbx_kind kind;
		struct sbx_host_stat *h;

		if (!split_subject(conn.prefix, ss->Subject, host, &kind))
			continue; /* counted in the totals; drain --nats names what it is */
		if (!(h = host_slot(out, host))) {
			err = sbx__fail(-ENOMEM, "out of memory");
			break;
		}
		h->msgs[kind] += ss->Msgs;
	}
	jsStreamInfo_Destroy(si);
	for (size_t i = 0; !err && i < out->n; i++)
		err = host_state(&conn, &out->hosts[i]);
	sbx_conn_close(&conn);
	if (err)
		sbx_stream_stat_free(out);
	return err;
}

void sbx_stream_stat_free(struct sbx_stream_stat *s)
{
	free(s->hosts);
	memset(s, 0, sizeof(*s));
}
