/*
 * consumers/export/conn.c - a connection to the stream the export lives
 * in: connect with reconnects, make or check the stream, read its last
 * message on a subject.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "export.h"
#include "wire.h"

uint64_t sbx__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void sbx__host_subject(const char *prefix, const char *host, char *buf, size_t n)
{
	char tok[3 * SBX_HOST_MAX + 1];

	if (!strcmp(host, "*"))
		snprintf(tok, sizeof(tok), "*");
	else
		sbx_token_escape(host, strlen(host), tok);
	snprintf(buf, n, "%s.%s.", prefix, tok);
}

/* After every URL failed: 100 ms, doubling to 2 s, plus up to 100 ms of jitter. */
static int64_t backoff(natsConnection *nc, int attempts, void *user)
{
	(void)nc;
	(void)user;
	int64_t d = 100ll << (attempts < 5 ? attempts : 5);

	return (d < 2000 ? d : 2000) + rand() % 100;
}

/* The next dot-separated token of s from *i, into (*t, *n); false at the end. */
static bool next_token(const char *s, size_t *i, const char **t, size_t *n)
{
	if (!s[*i])
		return false;
	*t = s + *i;
	*n = strcspn(*t, ".");
	*i += *n + (s[*i + *n] == '.');
	return true;
}

/*
 * Whether stream subject pattern covers every subject of ours (a pattern
 * ending in ">", maybe with "*" tokens): each of our tokens must be
 * matched by the pattern's literal, "*" or a ">" that ends it.
 */
static bool covers(const char *pattern, const char *ours)
{
	size_t i = 0, j = 0, pn, on;
	const char *pt, *ot;

	while (next_token(pattern, &i, &pt, &pn)) {
		if (pn == 1 && *pt == '>')
			return true;
		if (!next_token(ours, &j, &ot, &on) || (on == 1 && *ot == '>'))
			return false;
		if (pn == 1 && *pt == '*')
			continue;
		if (pn != on || memcmp(pt, ot, pn) != 0)
			return false;
	}
	return false;
}

static int check_subjects(const struct sbx_conn *c, jsStreamConfig *cfg, const char *host)
{
	char ours[SBX_PREFIX_MAX + 3 * SBX_HOST_MAX + 8];
	char list[600] = "";
	size_t o = 0;

	sbx__host_subject(c->prefix, host, ours, sizeof(ours) - 2);
	strcat(ours, ">");
	for (int i = 0; cfg && i < cfg->SubjectsLen; i++) {
		if (covers(cfg->Subjects[i], ours))
			return 0;
		if (o < sizeof(list) - 2)
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "",
					      cfg->Subjects[i]);
	}
	return sbx__fail(-EEXIST,
			 "stream %s exists but takes other subjects (%s), not %s: give another "
			 "--stream or a matching --subject-prefix",
			 c->stream, list[0] ? list : "none", ours);
}

static int stream_ready(struct sbx_conn *c, const struct sbx_conn_config *cfg, const char *url)
{
	jsStreamInfo *si = NULL;
	jsErrCode ec = 0;
	uint64_t until = sbx__now_ms() + (cfg->retry_ms ? cfg->retry_ms : 5000);
	natsStatus s;
	int err;

	/* A cluster electing its leaders times out or answers "temporarily unavailable". */
	while ((s = js_GetStreamInfo(&si, c->js, c->stream, NULL, &ec)) != NATS_OK &&
	       (s == NATS_TIMEOUT || ec == JSClusterNotAvailErr) && sbx__now_ms() < until)
		usleep(100000);

	if (s == NATS_OK) {
		err = check_subjects(c, si->Config, cfg->host);
		jsStreamInfo_Destroy(si);
		return err;
	}
	if (s == NATS_NO_RESPONDERS)
		return sbx__fail(
		    -EPROTO, "the server at %s has no JetStream (start nats-server with -js)", url);
	if (s != NATS_NOT_FOUND)
		return sbx__fail(-EIO, "cannot look up stream %s: %s (%s)", c->stream,
				 natsStatus_GetText(s), nats_GetLastError(NULL));
	if (!cfg->create)
		return sbx__fail(-ENOENT, "no stream %s at %s", c->stream, url);

	char subject[SBX_PREFIX_MAX + 3];
	const char *subjects[1] = { subject };
	jsStreamConfig sc;
	snprintf(subject, sizeof(subject), "%s.>", c->prefix);
	jsStreamConfig_Init(&sc);
	sc.Name = c->stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Replicas = cfg->replicas ? cfg->replicas : 1;
	s = js_AddStream(&si, c->js, &sc, NULL, &ec);
	if (s == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return 0;
	}
	char why[256];
	snprintf(why, sizeof(why), "%s",
		 nats_GetLastError(NULL) ? nats_GetLastError(NULL) : natsStatus_GetText(s));
	/*
	 * Someone made it meanwhile: check theirs. The server answers the
	 * loser of two creations racing with "name in use", or, when the other
	 * stream registered between its two checks, with "subjects overlap";
	 * only a stream of our name found now tells that case from another
	 * stream holding the subjects.
	 */
	if ((ec == JSStreamNameExistErr || ec == JSStreamSubjectOverlapErr) && cfg->create) {
		struct sbx_conn_config again = *cfg;

		again.create = false;
		err = stream_ready(c, &again, url);
		if (ec == JSStreamNameExistErr || err != -ENOENT)
			return err;
	}
	return sbx__fail(-EIO, "cannot create stream %s with subjects %s: %s", c->stream, subject,
			 why);
}

/* Connect with the options made at open, and make the JetStream context. */
static int dial(struct sbx_conn *c)
{
	natsStatus s = natsConnection_Connect(&c->nc, c->opts);

	if (s != NATS_OK) {
		c->nc = NULL;
		return sbx__fail(-ECONNREFUSED, "cannot reach NATS at %s: %s", c->url,
				 natsStatus_GetText(s));
	}
	s = natsConnection_JetStream(&c->js, c->nc, &c->jo);
	if (s != NATS_OK) {
		c->js = NULL;
		return sbx__fail(-ENOMEM, "cannot set up JetStream: %s", natsStatus_GetText(s));
	}
	return 0;
}

int sbx_conn_open(const struct sbx_conn_config *cfg, struct sbx_conn *out)
{
	const struct sbx_target *t = cfg->target;
	const char *url = t->url ? t->url : SBX_DEFAULT_URL;
	natsStatus s;
	int err;

	memset(out, 0, sizeof(*out));
	err = sbx_target_check(t);
	if (err)
		return err;
	snprintf(out->stream, sizeof(out->stream), "%s", t->stream);
	snprintf(out->prefix, sizeof(out->prefix), "%s",
		 t->prefix ? t->prefix : SBX_DEFAULT_PREFIX);
	snprintf(out->url, sizeof(out->url), "%s", url);

	/* "nats://a:4222,nats://b:4222": every server of a cluster, tried in turn. */
	char list[sizeof(out->url)];
	const char *servers[16];
	int n = 0;
	if (strlen(url) >= sizeof(list))
		return sbx__fail(-EINVAL, "--nats is longer than %zu bytes", sizeof(list) - 1);
	strcpy(list, url);
	for (char *save = NULL, *u = strtok_r(list, ", ", &save); u && n < 16;
	     u = strtok_r(NULL, ", ", &save))
		servers[n++] = u;
	if (n == 0)
		return sbx__fail(-EINVAL, "--nats '%s' names no server", url);
	s = natsOptions_Create(&out->opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(out->opts, servers, n);
	if (s == NATS_INVALID_ARG || s == NATS_ERR) {
		sbx_conn_close(out);
		return sbx__fail(-EINVAL, "--nats '%s' is not a list of NATS URLs", url);
	}
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(out->opts, cfg->connect_ms ? cfg->connect_ms : 5000);
	if (s == NATS_OK && cfg->own_reconnect) {
		/*
		 * The exporter reconnects itself, on a new connection: the library
		 * would flush what it buffered for the old one onto the new one,
		 * after messages lost with the old one, out of order.
		 */
		s = natsOptions_SetAllowReconnect(out->opts, false);
	} else if (s == NATS_OK) {
		s = natsOptions_SetMaxReconnect(out->opts, -1);
		if (s == NATS_OK)
			s = natsOptions_SetCustomReconnectDelay(out->opts, backoff, NULL);
	}
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(out->opts, 2000);
	if (s == NATS_OK)
		s = natsOptions_SetName(out->opts, "snapbridge");
	if (s != NATS_OK) {
		sbx_conn_close(out);
		return sbx__fail(-ENOMEM, "cannot set up NATS options: %s", natsStatus_GetText(s));
	}
	jsOptions_Init(&out->jo);
	out->jo.Wait = cfg->api_wait_ms	 ? cfg->api_wait_ms
		       : cfg->connect_ms ? cfg->connect_ms
					 : 5000;
	out->jo.PublishAsync.MaxPending = cfg->max_pending > 0 ? cfg->max_pending : 1024;
	out->jo.PublishAsync.AckHandler = cfg->ack_fn;
	out->jo.PublishAsync.AckHandlerClosure = cfg->ack_user;
	err = dial(out);
	if (!err)
		err = stream_ready(out, cfg, url);
	if (err) {
		char why[512];

		snprintf(why, sizeof(why), "%s", sbx_last_error());
		sbx_conn_close(out);
		return sbx__fail(err, "%s", why);
	}
	return 0;
}

/* Drop the connection and its context; the options stay for a redial. */
static void drop(struct sbx_conn *c)
{
	if (c->js)
		jsCtx_Destroy(c->js);
	if (c->nc) {
		natsConnection_Close(c->nc);
		natsConnection_Destroy(c->nc);
	}
	c->js = NULL;
	c->nc = NULL;
}

int sbx_conn_redial(struct sbx_conn *c)
{
	drop(c);
	int err = dial(c);
	if (err)
		drop(c);
	return err;
}

bool sbx_conn_up(const struct sbx_conn *c)
{
	return c->nc && natsConnection_Status(c->nc) == NATS_CONN_STATUS_CONNECTED;
}

void sbx_conn_close(struct sbx_conn *c)
{
	drop(c);
	natsOptions_Destroy(c->opts);
	c->opts = NULL;
}

int sbx_conn_last(struct sbx_conn *c, const char *subject, struct sbx_msg *out)
{
	natsMsg *msg = NULL;
	jsErrCode ec = 0;
	natsStatus s = js_GetLastMsg(&msg, c->js, c->stream, subject, NULL, &ec);

	if (s == NATS_NOT_FOUND)
		return 1;
	if (s != NATS_OK)
		return sbx__fail(-EIO, "cannot read the last message on %s from stream %s: %s",
				 subject, c->stream, natsStatus_GetText(s));
	int err = sbx_msg_decode(msg, c->prefix, out);
	if (err)
		natsMsg_Destroy(msg);
	return err;
}
