/*
 * Every public function called with every class of wrong argument it can
 * get (NULL, empty, too long, zero, huge, wrong state) returns its
 * documented error with a message, and changes nothing: after each suite
 * of bad calls, the bridge and the consumer read exactly as before.
 *
 * Use after destroy or close is not detectable in C without keeping freed
 * memory around; the NULL handle is, and the destructors accept it.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"

static struct sb_bridge *b;
static struct sb_consumer *c;
static uint8_t report[64];
static struct sb_report rep;

/* Everything a bad call could have changed, read through both APIs. */
struct state {
	uint64_t stores, aux, cursor;
	size_t len, events, consumers;
	uint32_t watches;
	uint64_t seqno;
};

static struct state snapshot(void)
{
	struct state s;

	memset(&s, 0, sizeof(s)); /* padding too: states are compared whole */
	cr_assert_eq(sb_consumer_store_count(c, &s.stores), 0);
	cr_assert_eq(sb_consumer_aux_count(c, &s.aux), 0);
	cr_assert_eq(sb_consumer_cursor(c, &s.cursor), 0);
	cr_assert_eq(sb_bridge_len(b, &s.len), 0);
	cr_assert_eq(sb_bridge_event_count(b, &s.events), 0);
	cr_assert_eq(sb_bridge_consumers(b, NULL, 0, &s.consumers), 0);
	cr_assert_eq(sb_bridge_watch_count(b, &s.watches), 0);
	cr_assert_eq(sb_bridge_accessor_publish_seqno(b, &s.seqno), 0);
	return s;
}

static void unchanged(const struct state *before)
{
	struct state now = snapshot();

	cr_assert_eq(memcmp(&now, before, sizeof(now)), 0,
		     "a refused call changed the bridge (stores %llu -> %llu, len %zu -> %zu, "
		     "events %zu -> %zu, aux %llu -> %llu)",
		     (unsigned long long)before->stores, (unsigned long long)now.stores,
		     before->len, now.len, before->events, now.events,
		     (unsigned long long)before->aux, (unsigned long long)now.aux);
}

/* The call returned want, and said why. */
#define REFUSED(call, want)                                                                        \
	do {                                                                                       \
		int rc_ = (call);                                                                  \
		cr_assert_eq(rc_, (want), "%s returned %d, not %d (%s)", #call, rc_, (want),       \
			     sb_last_error());                                                     \
		cr_assert_neq(sb_last_error()[0], '\0', "%s gave no message", #call);              \
	} while (0)

static void setup(void)
{
	struct sb_config cfg;
	int fd;

	tu_config(&cfg, 8, 16, SB_LOG_BYTES_MIN);
	cr_assert_eq(sb_bridge_create(&cfg, NULL, &b), 0);
	rep = (struct sb_report){ .schema = "s",
				  .msgpack = report,
				  .msgpack_len = tu_report(report, 16, 1) };
	cr_assert_eq(sb_bridge_store(b, "kept", &rep), 0);
	cr_assert_eq(sb_bridge_data_fd(b, &fd), 0);
	cr_assert_eq(sb_consumer_open_fd(fd, 0, &c), 0);
	close(fd);
}

static void teardown(void)
{
	sb_consumer_close(c);
	sb_bridge_destroy(b);
}

TestSuite(api_args, .init = setup, .fini = teardown, .timeout = 30);

static char *long_string(size_t n)
{
	static char buf[8192];

	cr_assert_lt(n, sizeof(buf));
	memset(buf, 'x', n);
	buf[n] = '\0';
	return buf;
}

Test(api_args, bridge_construction_and_configuration)
{
	struct sb_config cfg, got;
	struct sb_bridge *x = (void *)1;
	int fd;

	REFUSED(sb_bridge_create(NULL, NULL, NULL), -EINVAL);
	sb_config_default(&cfg);
	cfg.max_snapshots = 0;
	REFUSED(sb_bridge_create(&cfg, NULL, &x), -EINVAL);
	cr_assert_null(x, "a failed create leaves *out NULL");
	sb_config_default(&cfg);
	cfg.log_bytes = UINT64_MAX;
	REFUSED(sb_bridge_create(&cfg, NULL, &x), -EINVAL);
	sb_config_default(&cfg);
	cfg.max_watch = UINT32_MAX;
	REFUSED(sb_bridge_create(&cfg, NULL, &x), -EINVAL);
	sb_config_default(&cfg);
	cfg.flags = 1u << 31;
	REFUSED(sb_bridge_create(&cfg, NULL, &x), -EINVAL);

	struct state before = snapshot();
	REFUSED(sb_bridge_config(NULL, &got), -EINVAL);
	REFUSED(sb_bridge_config(b, NULL), -EINVAL);
	REFUSED(sb_bridge_data_fd(NULL, &fd), -EINVAL);
	REFUSED(sb_bridge_data_fd(b, NULL), -EINVAL);
	REFUSED(sb_bridge_consumer_socket(NULL, &fd), -EINVAL);
	REFUSED(sb_bridge_consumer_socket(b, NULL), -EINVAL);
	REFUSED(sb_bridge_consumer_socket(b, &fd), -ENOTCONN); /* wrong state: not serving */
	cr_assert_eq(fd, -1);
	REFUSED(sb_bridge_consumers(NULL, NULL, 0, NULL), -EINVAL);
	REFUSED(sb_bridge_consumers(b, NULL, 4, NULL), -EINVAL);
	unchanged(&before);
	sb_bridge_destroy(NULL); /* accepted, does nothing */
	sb_config_default(NULL);
	sb_serve_config_default(NULL);
}

Test(api_args, serving)
{
	struct sb_serve_config sc;
	char name[64];

	struct state before = snapshot();
	sb_serve_config_default(&sc);
	REFUSED(sb_bridge_serve(NULL, &sc), -EINVAL);
	REFUSED(sb_bridge_serve(b, NULL), -EINVAL);
	sc.socket = "";
	cr_assert_lt(sb_bridge_serve(b, &sc), 0, "an empty socket name");
	sc.socket = long_string(200);
	REFUSED(sb_bridge_serve(b, &sc), -ENAMETOOLONG);
	snprintf(name, sizeof(name), "@sb-api-%d", (int)getpid());
	sc.socket = name;
	sc.heartbeat_ms = 0;
	REFUSED(sb_bridge_serve(b, &sc), -EINVAL);
	sc.heartbeat_ms = UINT32_MAX;
	REFUSED(sb_bridge_serve(b, &sc), -EINVAL);
	sb_serve_config_default(&sc);
	sc.socket = name;
	sc.reserved = 7;
	REFUSED(sb_bridge_serve(b, &sc), -EINVAL);
	sb_serve_config_default(&sc);
	sc.socket = name;
	sc.allowed_gid = (int64_t)1 << 40;
	REFUSED(sb_bridge_serve(b, &sc), -EINVAL);
	unchanged(&before);
	/* Wrong state: serving twice (the first without a socket: hand-overs only). */
	sb_serve_config_default(&sc);
	sc.socket = NULL;
	cr_assert_eq(sb_bridge_serve(b, &sc), 0, "%s", sb_last_error());
	sc.socket = name;
	REFUSED(sb_bridge_serve(b, &sc), -EALREADY);
}

Test(api_args, stores_and_captures)
{
	char *too_long = long_string(SB_TAG_MAX + 1);
	struct sb_report bad = rep;
	struct sb_stats stats = { .kind = 99 };
	bool flag;

	struct state before = snapshot();
	REFUSED(sb_bridge_store(NULL, "t", &rep), -EINVAL);
	REFUSED(sb_bridge_store(b, NULL, &rep), -EINVAL);
	REFUSED(sb_bridge_store(b, "", &rep), -EINVAL);
	REFUSED(sb_bridge_store(b, too_long, &rep), -ENAMETOOLONG);
	REFUSED(sb_bridge_store(b, "t", NULL), -EINVAL);
	bad.msgpack = NULL;
	REFUSED(sb_bridge_store(b, "t", &bad), -EINVAL);
	bad = rep;
	bad.schema = long_string(SB_SCHEMA_MAX + 1);
	REFUSED(sb_bridge_store(b, "t", &bad), -ENAMETOOLONG);
	REFUSED(sb_bridge_store_with_stats(b, "t", &rep, &stats, NULL), -EINVAL);
	stats = (struct sb_stats){ .kind = SB_STATS_MISSING, .missing = { .kind = 0 } };
	REFUSED(sb_bridge_store_with_stats(b, "t", &rep, &stats, NULL), -EINVAL);
	stats.missing = (struct sb_missing){ .kind = SB_MISSING_NO_SCHEDULER,
					     .text = long_string(SB_REASON_MAX + 1) };
	REFUSED(sb_bridge_store_with_stats(b, "t", &rep, &stats, NULL), -ENAMETOOLONG);
	REFUSED(sb_bridge_store_with_stats_and_step(b, NULL, &rep, NULL, NULL, NULL, 0), -EINVAL);
	REFUSED(sb_bridge_capture(NULL, "t", &flag), -EINVAL);
	REFUSED(sb_bridge_capture(b, "", &flag), -EINVAL);
	REFUSED(sb_bridge_capture_with_step(b, too_long, 1, &flag), -ENAMETOOLONG);
	unchanged(&before);
}

Test(api_args, queries_and_drains)
{
	struct sb_entries e;
	struct sb_events ev;
	size_t n;
	bool flag;
	uint32_t u;

	struct state before = snapshot();
	REFUSED(sb_bridge_len(NULL, &n), -EINVAL);
	REFUSED(sb_bridge_len(b, NULL), -EINVAL);
	REFUSED(sb_bridge_is_empty(NULL, &flag), -EINVAL);
	REFUSED(sb_bridge_is_empty(b, NULL), -EINVAL);
	REFUSED(sb_bridge_has(NULL, "kept", &flag), -EINVAL);
	REFUSED(sb_bridge_has(b, NULL, &flag), -EINVAL);
	REFUSED(sb_bridge_has(b, "kept", NULL), -EINVAL);
	REFUSED(sb_bridge_periodic_real_count(NULL, &u), -EINVAL);
	REFUSED(sb_bridge_periodic_real_count(b, NULL), -EINVAL);
	REFUSED(sb_bridge_drain(NULL, &e), -EINVAL);
	REFUSED(sb_bridge_drain(b, NULL), -EINVAL);
	REFUSED(sb_bridge_drain_ordered(b, NULL), -EINVAL);
	REFUSED(sb_bridge_drain_ordered_with_stats(b, NULL), -EINVAL);
	REFUSED(sb_bridge_drain_events(NULL, &ev), -EINVAL);
	REFUSED(sb_bridge_drain_events(b, NULL), -EINVAL);
	REFUSED(sb_bridge_event_count(NULL, &n), -EINVAL);
	REFUSED(sb_bridge_event_count(b, NULL), -EINVAL);
	unchanged(&before);
	REFUSED(sb_bridge_has(b, "", &flag), -EINVAL);
	REFUSED(sb_bridge_has(b, long_string(SB_TAG_MAX + 1), &flag), -ENAMETOOLONG);
	sb_entries_free(NULL);
	sb_events_free(NULL);
}

Test(api_args, watch_accessor_kernel_ops_and_cgroup_procs)
{
	struct sb_kop_request req = { 1, SB_KOP_HOT, SB_KOP_READ, "t", NULL, 0 };
	struct sb_kop_reply reply = { .id = 1, .success = true }, *out;
	struct sb_kop_value v;
	struct sb_kop_log kl;
	struct sb_cgroup_procs *p;
	struct sb_cgroup_procs_log cl;
	uint64_t u64;
	uint32_t u32;

	struct state before = snapshot();
	REFUSED(sb_bridge_register_watch(NULL, "s"), -EINVAL);
	REFUSED(sb_bridge_register_watch(b, NULL), -EINVAL);
	REFUSED(sb_bridge_register_watch(b, ""), -EINVAL);
	REFUSED(sb_bridge_register_watch(b, long_string(SB_KOP_TARGET_MAX + 1)), -ENAMETOOLONG);
	REFUSED(sb_bridge_register_watch(b, "s"), -ENOSYS); /* wrong state: no callback */
	REFUSED(sb_bridge_watch_count(NULL, &u32), -EINVAL);
	REFUSED(sb_bridge_watch_count(b, NULL), -EINVAL);

	REFUSED(sb_bridge_accessor_install(NULL), -EINVAL);
	REFUSED(sb_bridge_accessor_publish(NULL, &u64), -EINVAL);
	REFUSED(sb_bridge_accessor_publish(b, &u64), -ENODEV); /* wrong state: not installed */
	REFUSED(sb_bridge_accessor_retry(b), -ENODEV);
	REFUSED(sb_bridge_accessor_fail(b), -ENODEV);
	REFUSED(sb_bridge_accessor_publish_seqno(NULL, &u64), -EINVAL);
	REFUSED(sb_bridge_accessor_publish_seqno(b, NULL), -EINVAL);
	REFUSED(sb_bridge_wait_worker_not_trying(NULL, 0, "op"), -EINVAL);
	REFUSED(sb_bridge_wait_publish_advance(NULL, 0, 0, "op", NULL), -EINVAL);

	REFUSED(sb_bridge_dispatch_kernel_op(NULL, &req, &out), -EINVAL);
	REFUSED(sb_bridge_dispatch_kernel_op(b, NULL, &out), -EINVAL);
	REFUSED(sb_bridge_dispatch_kernel_op(b, &req, &out), -ENOSYS); /* no callback */
	REFUSED(sb_bridge_record_kernel_op_reply(NULL, "t", &reply), -EINVAL);
	REFUSED(sb_bridge_record_kernel_op_reply(b, "", &reply), -EINVAL);
	REFUSED(sb_bridge_record_kernel_op_reply(b, long_string(SB_KOP_TAG_MAX + 1), &reply),
		-ENAMETOOLONG);
	REFUSED(sb_bridge_record_kernel_op_reply(b, "t", NULL), -EINVAL);
	reply.n_values = 3; /* values at NULL */
	REFUSED(sb_bridge_record_kernel_op_reply(b, "t", &reply), -EINVAL);
	reply.n_values = SIZE_MAX;
	REFUSED(sb_bridge_record_kernel_op_reply(b, "t", &reply), -E2BIG);
	REFUSED(sb_bridge_drain_kernel_ops(NULL, &kl), -EINVAL);
	REFUSED(sb_bridge_drain_kernel_ops(b, NULL), -EINVAL);
	REFUSED(sb_bridge_kernel_op_value(NULL, "t", &v), -EINVAL);
	REFUSED(sb_bridge_kernel_op_value(b, NULL, &v), -EINVAL);
	REFUSED(sb_bridge_kernel_op_value(b, "t", NULL), -EINVAL);
	REFUSED(sb_bridge_kernel_op_value(b, "t", &v), -ENOENT);

	REFUSED(sb_bridge_record_cgroup_procs(NULL, "t", "cg", NULL, 0), -EINVAL);
	REFUSED(sb_bridge_record_cgroup_procs(b, NULL, "cg", NULL, 0), -EINVAL);
	REFUSED(sb_bridge_record_cgroup_procs(b, "t", NULL, NULL, 0), -EINVAL);
	REFUSED(sb_bridge_record_cgroup_procs(b, "t", "cg", NULL, 1), -EINVAL);
	REFUSED(sb_bridge_record_cgroup_procs(b, "t", "cg", NULL, SIZE_MAX), -E2BIG);
	REFUSED(sb_bridge_drain_cgroup_procs(NULL, &cl), -EINVAL);
	REFUSED(sb_bridge_drain_cgroup_procs(b, NULL), -EINVAL);
	REFUSED(sb_bridge_cgroup_procs_by_tag(NULL, "t", &p), -EINVAL);
	REFUSED(sb_bridge_cgroup_procs_by_tag(b, NULL, &p), -EINVAL);
	REFUSED(sb_bridge_cgroup_procs_by_tag(b, "t", NULL), -EINVAL);
	REFUSED(sb_bridge_cgroup_procs_by_tag(b, "t", &p), -ENOENT);
	unchanged(&before);

	REFUSED(sb_with_active_bridge(NULL, NULL, NULL), -EINVAL);
	sb_bridge_guard_restore(NULL);
	sb_kop_log_free(NULL);
	sb_kop_value_free(NULL);
	sb_kop_reply_free(NULL);
	sb_kop_request_free(NULL);
	sb_cgroup_procs_free(NULL);
	sb_cgroup_procs_log_free(NULL);
}

Test(api_args, kernel_op_codec)
{
	struct sb_kop_request req = { 1, SB_KOP_HOT, SB_KOP_READ, "t", NULL, 0 }, *rq;
	struct sb_kop_reply reply = { .id = 1, .success = true }, *rp;
	void *buf;
	size_t len;

	REFUSED(sb_kop_request_encode(NULL, &buf, &len), -EINVAL);
	REFUSED(sb_kop_request_encode(&req, NULL, &len), -EINVAL);
	REFUSED(sb_kop_request_encode(&req, &buf, NULL), -EINVAL);
	req.tag = NULL;
	REFUSED(sb_kop_request_encode(&req, &buf, &len), -EINVAL);
	req.tag = "t";
	req.direction = 2;
	REFUSED(sb_kop_request_encode(&req, &buf, &len), -EINVAL);
	REFUSED(sb_kop_reply_encode(NULL, &buf, &len), -EINVAL);
	REFUSED(sb_kop_reply_encode(&reply, NULL, &len), -EINVAL);
	REFUSED(sb_kop_request_decode("x", 1, NULL), -EINVAL);
	REFUSED(sb_kop_request_decode(NULL, 5, &rq), -EINVAL);
	REFUSED(sb_kop_request_decode("", 0, &rq), -EBADMSG);
	REFUSED(sb_kop_reply_decode(NULL, 5, &rp), -EINVAL);
	REFUSED(sb_kop_reply_decode("\xc0", 1, &rp), -EBADMSG);
	REFUSED(sb_kop_reply_decode("\xc0", (size_t)SB_KOP_REPLY_MAX + 1, &rp), -EBADMSG);
}

Test(api_args, consumers)
{
	struct sb_consumer *x = (void *)1;
	struct sb_drain_counts d;
	struct sb_aux_counts a;
	struct sb_events ev;
	struct sb_consumer_info info;
	enum sb_wait_status ws;
	enum sb_coord_state cs;
	enum sb_worker_state w;
	uint64_t u64;
	uint32_t u32;
	size_t n;
	bool flag;
	int fd;

	struct state before = snapshot();
	REFUSED(sb_consumer_open_fd(-1, 0, &x), -EBADF);
	cr_assert_null(x);
	REFUSED(sb_consumer_open_fd(0, 0, NULL), -EINVAL);
	cr_assert_eq(sb_bridge_data_fd(b, &fd), 0);
	REFUSED(sb_consumer_open_fd(fd, 0x80000000u, &x), -EINVAL); /* unknown flag */
	close(fd);
	REFUSED(sb_consumer_open_socket(-1, 0, &x), -EBADF);
	cr_assert_null(x);
	REFUSED(sb_consumer_open_socket(-1, 0, NULL), -EINVAL);
	REFUSED(sb_consumer_connect_with("@x", NULL, &x), -EINVAL);
	struct sb_connect_config cc;
	sb_connect_config_default(&cc);
	cc.expect_uid = -2;
	REFUSED(sb_consumer_connect_with("@x", &cc, &x), -EINVAL);
	sb_connect_config_default(&cc);
	cc.reserved = 1;
	REFUSED(sb_consumer_connect_with("@x", &cc, &x), -EINVAL);
	sb_connect_config_default(&cc);
	cc.flags = 0x80000000u;
	REFUSED(sb_consumer_connect_with("@x", &cc, &x), -EINVAL);
	sb_connect_config_default(NULL);
	REFUSED(sb_consumer_connect(NULL, 0, &x), -EINVAL);
	REFUSED(sb_consumer_connect("@x", 0, NULL), -EINVAL);
	REFUSED(sb_consumer_connect(long_string(300), 0, &x), -ENAMETOOLONG);
	REFUSED(sb_consumer_open_pid(0, 0, &x), -EINVAL);
	REFUSED(sb_consumer_open_pid(-5, 0, &x), -EINVAL);
	REFUSED(sb_consumer_open_pid(getpid(), 0, NULL), -EINVAL);
	REFUSED(sb_consumer_open_image(NULL, 0, &x), -EINVAL);
	REFUSED(sb_consumer_open_image("/nonexistent/image", 0, &x), -ENOENT);
	REFUSED(sb_consumer_open_image("/dev/null", 0, &x), -EBADF);

	REFUSED(sb_consumer_wait(NULL, 0, &ws), -EINVAL);
	REFUSED(sb_consumer_wait(c, 0, NULL), -EINVAL);
	REFUSED(sb_consumer_pollfd(NULL, &fd), -EINVAL);
	REFUSED(sb_consumer_pollfd(c, &fd), -EOPNOTSUPP); /* wrong state: not connected */
	REFUSED(sb_consumer_arm(NULL, &ws), -EINVAL);
	REFUSED(sb_consumer_coordinator(NULL, &cs), -EINVAL);
	REFUSED(sb_consumer_coordinator(c, NULL), -EINVAL);
	REFUSED(sb_consumer_peers(NULL, &info, 1, &n), -EINVAL);
	REFUSED(sb_consumer_peers(c, &info, 2, NULL), -EINVAL);
	REFUSED(sb_consumer_peers(c, NULL, 2, &n), -EINVAL);
	REFUSED(sb_consumer_drain(NULL, NULL, NULL, &d), -EINVAL);
	REFUSED(sb_consumer_totals(NULL, &d), -EINVAL);
	REFUSED(sb_consumer_totals(c, NULL), -EINVAL);
	REFUSED(sb_consumer_cursor(c, NULL), -EINVAL);
	REFUSED(sb_consumer_store_count(NULL, &u64), -EINVAL);
	REFUSED(sb_consumer_drain_events(c, NULL), -EINVAL);
	REFUSED(sb_consumer_drain_events(NULL, &ev), -EINVAL);
	REFUSED(sb_consumer_len(NULL, &n), -EINVAL);
	REFUSED(sb_consumer_has(c, NULL, &flag), -EINVAL);
	REFUSED(sb_consumer_has(c, "kept", NULL), -EINVAL);
	REFUSED(sb_consumer_set_writer_gone(NULL, true), -EINVAL);
	REFUSED(sb_consumer_drain_aux(NULL, NULL, NULL, &a), -EINVAL);
	REFUSED(sb_consumer_aux_totals(c, NULL), -EINVAL);
	REFUSED(sb_consumer_aux_count(NULL, &u64), -EINVAL);
	REFUSED(sb_consumer_watch_count(c, NULL), -EINVAL);
	REFUSED(sb_consumer_accessor(c, NULL, &u64, &w), -EINVAL);
	REFUSED(sb_consumer_wait_worker_not_trying(NULL, 0, "op"), -EINVAL);
	REFUSED(sb_consumer_wait_publish_advance(NULL, 0, 0, "op", &u64), -EINVAL);
	unchanged(&before);
	REFUSED(sb_consumer_has(c, "", &flag), -EINVAL); /* tags checked as the bridge does */
	REFUSED(sb_consumer_has(c, long_string(SB_TAG_MAX + 1), &flag), -ENAMETOOLONG);
	(void)u32;
	sb_consumer_close(NULL);
}

Test(api_args, names_of_values_outside_their_enums)
{
	cr_assert_not_null(sb_missing_kind_name(0));
	cr_assert_not_null(sb_missing_kind_name(1000));
	cr_assert_not_null(sb_event_kind_name(0));
	cr_assert_not_null(sb_event_kind_name(1000));
	cr_assert_not_null(sb_coord_state_name(0));
	cr_assert_null(sb_worker_state_name(3), "documented: NULL for anything else");
	cr_assert(!sb_tag_is_periodic(NULL));
	cr_assert(!sb_tag_is_periodic(""));
}
