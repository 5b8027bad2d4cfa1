/*
 * bench/e2e.c - records from a writer process to consumer processes that
 * drain as fast as they can, each ending with its own copy of every
 * record it got.
 *
 *   snapbridge   a served bridge (64 snapshots, a log of p->ring_bytes),
 *                unique tags; consumers connect over the socket in
 *                all-versions mode (every record still in the log is
 *                delivered, as a ring would) and spin on sb_consumer_drain;
 *                with p->validate they also check each report's msgpack
 *                (SB_CONSUMER_VALIDATE_MSGPACK).
 *   raw_ring     raw_ring.h; consumers map the sealed memfd read-only.
 *   pipe         one pipe per consumer (1 MiB buffer), one write() per
 *                record and consumer: [seq u64][len u32][pad u32][payload].
 *   unix_stream  the same over a SOCK_STREAM socketpair.
 *   iceoryx      bench/iceoryx.c (when built with it; RouDi already running).
 *
 * Phases of the writer, the same for every system: p->warm records before
 * the consumers attach (a ring system's pages: the writer writes its whole
 * ring), p->warm more once they are attached (every consumer reads a
 * whole ring's worth: its mapping and buffers are faulted in), then
 * p->nlat records timed one by one (the store latency of the systems whose
 * store needs a consumer), then p->n records timed as a whole, from t0. A
 * consumer counts the records of that last phase it got (by sequence
 * number) and stops the clock when it has accounted for the last one;
 * delivered records per second is what it got divided by (its end - t0).
 * Whatever it did not get is reported as lost, from its own accounting
 * (snapbridge: lapped; raw_ring: sequence gaps), and checked against
 * stores - delivered. Minor page faults are counted over the timed phase
 * in the writer and, from the moment it sees t0, in each consumer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../ring/atomics.h"
#include "../ring/clock.h"
#include "harness.h"
#include "iox.h"
#include "measure.h"
#include "raw_ring.h"

#define PIPE_BYTES (1u << 20)
#define READ_BUF   (4u << 20)

struct e2e_consumer {
	uint64_t delivered; /* records of the timed phase */
	uint64_t lost;	    /* by the consumer's own accounting */
	uint64_t t_end;
	uint64_t faults;	       /* minor page faults from seeing t0 to t_end */
	struct sb_drain_counts counts; /* snapbridge */
};

struct e2e_shared {
	_Alignas(64) uint32_t served; /* the writer is ready: consumers may attach */
	uint32_t ready;		      /* consumers attached */
	uint32_t caught;	      /* consumers that read past the last untimed record */
	uint32_t done;		      /* consumers finished */
	uint32_t finished;	      /* the writer stored its last record */
	_Alignas(64) uint64_t t0;     /* start of the timed phase */
	uint64_t writer_ns, writer_cpu_ns, writer_faults;
	struct e2e_consumer c[SBB_MAX_CONSUMERS];
	sbb_errtab err;
	uint64_t lat[]; /* the writer's per-record latencies */
};

struct e2e_run {
	const char *system;
	const struct sbb_params *p;
	struct e2e_shared *sh;
	char socket[64];
	struct rr_ring ring;
	int fds[SBB_MAX_CONSUMERS][2]; /* pipe / socketpair: [0] consumer end, [1] writer end */
	char instance[64];	       /* iceoryx service instance */
	struct sbb_iox *iox;	       /* iceoryx, in the writer */
	uint64_t first;		       /* sequence number of the first timed record */
	uint64_t last;		       /* of the last one */
};

/* Consumer k is child k + 1. */
static unsigned consumer_of(int idx)
{
	return (unsigned)idx - 1;
}

/* ---- writer side ------------------------------------------------------------------- */

struct frame {
	uint64_t seq;
	uint32_t len;
	uint32_t pad;
};

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* One record to every consumer; the sequence number goes in the frame (or the payload). */
static int put_record(struct e2e_run *r, void *bridge, uint8_t *frame, uint64_t seq,
		      struct sbb_tags *tags)
{
	uint32_t size = r->p->size;

	if (bridge) {
		struct sb_report rep = { .schema = "bench", .msgpack = frame, .msgpack_len = size };
		sbb_tags_next(tags);
		return sb_bridge_store(bridge, tags->s, &rep);
	}
	if (!strcmp(r->system, "raw_ring")) {
		rr_append(&r->ring, frame, size); /* the ring numbers its records itself */
		return 0;
	}
#ifdef SBB_HAVE_IOX
	if (r->iox)
		return sbb_iox_put(r->iox, frame, size, seq);
#endif
	((struct frame *)frame)->seq = seq;
	for (unsigned k = 0; k < r->p->consumers; k++) {
		int err = write_all(r->fds[k][1], frame, sizeof(struct frame) + size);
		if (err)
			return err;
	}
	return 0;
}

static int e2e_writer(void *arg, int idx)
{
	struct e2e_run *r = arg;
	struct e2e_shared *sh = r->sh;
	const struct sbb_params *p = r->p;
	struct sb_bridge *bridge = NULL;
	bool framed = !strcmp(r->system, "pipe") || !strcmp(r->system, "unix_stream");
	bool iox = !strcmp(r->system, "iceoryx");
	size_t off = framed ? sizeof(struct frame) : 0;
	uint8_t *frame = malloc(off + p->size);
	struct sbb_tags tags;
	uint64_t seq = 0;
	int err = 0;

	if (!frame)
		return sbb_child_fail(&sh->err, idx, -ENOMEM, "out of memory");
	sbb_pin(0); /* before the bridge's threads start: they inherit it */
	for (unsigned k = 0; k < SBB_MAX_CONSUMERS && framed; k++)
		if (r->fds[k][0] >= 0)
			close(r->fds[k][0]);
	memset(frame, 0, off);
	((struct frame *)frame)->len = p->size;
	sbb_make_shaped(p->shape, frame + off, p->size);
	sbb_tags_init(&tags, "periodic_");
	if (!strcmp(r->system, "snapbridge")) {
		err = sbb_serve_bridge(r->socket, SBB_MAX_SNAPS, p->ring_bytes, &bridge);
		if (err) {
			err = sbb_child_fail(&sh->err, idx, err, "serving: %s", sb_last_error());
			goto out;
		}
	}
#ifdef SBB_HAVE_IOX
	if (iox && (err = sbb_iox_pub_open(r->instance, &r->iox)) != 0) {
		err = sbb_child_fail(&sh->err, idx, err, "iceoryx publisher: %s", strerror(-err));
		goto out;
	}
#endif
	/*
	 * A ring's pages, before anyone attaches. Pipes hold only what the
	 * consumers read, and an iceoryx publisher without subscribers drops
	 * everything, so theirs have nothing to fault in here.
	 */
	sbb_prefault_shared(); /* the ring or the chunk pools, whatever this system maps */
	uint64_t warm_end = framed || iox ? 0 : p->warm;
	for (; seq < warm_end && !err; seq++)
		err = put_record(r, bridge, frame, seq + 1, &tags);
	sb_store_release(&sh->served, 1); /* pairs with the consumers' acquire */
	if (!err)
		err = sbb_await_count(&sh->ready, p->consumers, SBB_STEP_TIMEOUT_MS);
	if (err) {
		err = sbb_child_fail(&sh->err, idx, err, "warm-up or attach: %s",
				     bridge ? sb_last_error() : strerror(-err));
		goto out;
	}
	/* A ring's worth again, every system alike: the consumers' side warms up. */
	for (warm_end += p->warm; seq < warm_end && !err; seq++)
		err = put_record(r, bridge, frame, seq + 1, &tags);
	for (uint64_t i = 0; i < p->nlat && !err; i++, seq++) {
		uint64_t t = sb__mono_ns();
		err = put_record(r, bridge, frame, seq + 1, &tags);
		sh->lat[i] = sb__mono_ns() - t;
	}
	/* No backlog from the untimed phases may count against the timed one. */
	if (!err && sbb_await_count(&sh->caught, p->consumers, SBB_STEP_TIMEOUT_MS)) {
		err = sbb_child_fail(&sh->err, idx, -ETIMEDOUT,
				     "consumers did not catch up with the warm-up");
		goto out;
	}
	sbb_touch_clocks();
	uint64_t f0 = sbb_minflt(), c0 = sbb_process_cpu_ns(), t0 = sb__mono_ns();
	sb_store_release(&sh->t0, t0);
	for (uint64_t i = 0; i < p->n && !err; i++, seq++)
		err = put_record(r, bridge, frame, seq + 1, &tags);
	sh->writer_ns = sb__mono_ns() - t0;
	sh->writer_cpu_ns = sbb_process_cpu_ns() - c0;
	sh->writer_faults = sbb_minflt() - f0;
	sb_store_release(&sh->finished, 1); /* after the last record: pairs with the consumers */
	if (err) {
		err = sbb_child_fail(&sh->err, idx, err, "record %llu: %s", (unsigned long long)seq,
				     bridge ? sb_last_error() : strerror(-err));
		goto out;
	}
	/* Consumers of a bridge or a ring still read it: stay until they are done. */
	if (sbb_await_count(&sh->done, p->consumers, SBB_RUN_TIMEOUT_MS))
		err = sbb_child_fail(&sh->err, idx, -ETIMEDOUT, "consumers did not finish");
out:
	for (unsigned k = 0; k < SBB_MAX_CONSUMERS && framed; k++)
		if (r->fds[k][1] >= 0)
			close(r->fds[k][1]);
	if (bridge)
		sb_bridge_destroy(bridge);
#ifdef SBB_HAVE_IOX
	sbb_iox_close(r->iox);
#endif
	free(frame);
	return err;
}

/* ---- consumers --------------------------------------------------------------------- */

static void consumer_done(struct e2e_run *r)
{
	sb_fetch_add_release(&r->sh->done, 1); /* pairs with the writer's sbb_await_count */
}

/* Say once that this consumer has read past the untimed records (seq is the last it read). */
static void caught_up(const struct e2e_run *r, bool *said, uint64_t seq)
{
	if (!*said && seq + 1 >= r->first) {
		sb_fetch_add_release(&r->sh->caught, 1); /* pairs with the writer's await */
		*said = true;
	}
}

/* A consumer's faults are counted from the moment it sees the timed phase begin. */
struct fault_window {
	uint64_t start;
	bool open;
};

static void window_check(struct fault_window *fw, const struct e2e_shared *sh)
{
	if (!fw->open && sb_load_acquire(&sh->t0) != 0) { /* pairs with the writer's release */
		sbb_touch_clocks();
		fw->start = sbb_minflt();
		fw->open = true;
	}
}

static uint64_t window_close(struct fault_window *fw)
{
	return fw->open ? sbb_minflt() - fw->start : 0;
}

struct sb_tally {
	const struct e2e_run *r;
	uint64_t delivered;
};

/*
 * The entry points into the consumer's own copy, made and re-validated by
 * the drain: the one copy-out, as rr_read(), read() and iceoryx's take +
 * memcpy make theirs.
 */
static int on_entry(void *user, const struct sb_entry *e)
{
	struct sb_tally *t = user;

	if (e->store_seq >= t->r->first && e->store_seq <= t->r->last)
		t->delivered++;
	return e->report_len == t->r->p->size ? 0 : -EBADMSG;
}

static int snapbridge_consumer(struct e2e_run *r, int idx)
{
	struct e2e_shared *sh = r->sh;
	struct e2e_consumer *me = &sh->c[consumer_of(idx)];
	struct sb_tally t = { .r = r };
	struct fault_window fw = { 0, false };
	struct sb_consumer *c;
	uint64_t cursor = 0;
	int err;

	err = sbb_connect_when(
	    &sh->served, r->socket,
	    SB_CONSUMER_ALL_VERSIONS | (r->p->validate ? SB_CONSUMER_VALIDATE_MSGPACK : 0), &c);
	if (err)
		return sbb_child_fail(&sh->err, idx, err, "connect: %s", sb_last_error());
	/*
	 * Read the whole log the writer filled before we came (it waits for us
	 * meanwhile): every page of the mapping and the copy buffer at its size.
	 */
	uint64_t stores = 0;
	err = sb_consumer_store_count(c, &stores);
	while (!err && cursor < stores) {
		err = sb_consumer_drain(c, on_entry, &t, NULL);
		if (!err)
			err = sb_consumer_cursor(c, &cursor);
	}
	sbb_prefault_shared();
	sb_fetch_add_release(&sh->ready, 1);
	uint64_t deadline = sbb_deadline_after_ms(SBB_RUN_TIMEOUT_MS);
	bool said = false;
	for (unsigned i = 1; !err && cursor < r->last; i++) {
		window_check(&fw, sh);
		caught_up(r, &said, cursor);
		err = sb_consumer_drain(c, on_entry, &t, NULL);
		if (!err)
			err = sb_consumer_cursor(c, &cursor);
		if ((i & 1023) == 0 && sb__mono_ns() > deadline)
			err = -ETIMEDOUT;
	}
	me->t_end = sb__mono_ns();
	me->faults = window_close(&fw);
	if (err) {
		err = sbb_child_fail(&sh->err, idx, err, "draining: %s",
				     err == -ETIMEDOUT ? "timed out" : sb_last_error());
	} else {
		sb_consumer_totals(c, &me->counts);
		me->delivered = t.delivered;
		/*
		 * All-versions mode: superseded and evicted records are delivered
		 * too, so what the timed phase did not deliver was lapped (or torn);
		 * the totals, warm-ups included, must still add up (checked later).
		 */
		me->lost = r->last - r->first + 1 - t.delivered;
	}
	sb_consumer_close(c);
	consumer_done(r);
	return err;
}

/* Take one record into buf: its length (> 0), 0 when none is there, or -errno. */
typedef long (*take_fn)(void *src, void *buf, uint32_t len, uint64_t *seq);

/*
 * The consumer loop of a source that drops instead of blocking (raw_ring,
 * iceoryx): take until the last timed record, or until the writer has
 * finished and nothing more comes (the rest was lapped or dropped).
 */
static int poll_source(struct e2e_run *r, int idx, take_fn take, void *src, uint8_t *buf)
{
	struct e2e_shared *sh = r->sh;
	struct e2e_consumer *me = &sh->c[consumer_of(idx)];
	uint64_t deadline = sbb_deadline_after_ms(SBB_RUN_TIMEOUT_MS);
	struct fault_window fw = { 0, false };
	uint64_t seq = 0;
	int err = 0;

	bool said = false;

	sbb_prefault_shared();
	sb_fetch_add_release(&sh->ready, 1);
	for (unsigned i = 1; seq < r->last; i++) {
		window_check(&fw, sh);
		caught_up(r, &said, seq);
		bool finished =
		    sb_load_acquire(&sh->finished); /* pairs with the writer's release */
		long got = take(src, buf, r->p->size, &seq);
		if (got < 0) {
			err = sbb_child_fail(&sh->err, idx, (int)got, "record after %llu: %s",
					     (unsigned long long)seq, strerror((int)-got));
			break;
		}
		if (got && seq >= r->first && seq <= r->last)
			me->delivered++;
		if (!got && finished)
			break;
		if ((i & 4095) == 0 && sb__mono_ns() > deadline) {
			err = sbb_child_fail(&sh->err, idx, -ETIMEDOUT, "timed out at record %llu",
					     (unsigned long long)seq);
			break;
		}
	}
	me->t_end = sb__mono_ns();
	me->faults = window_close(&fw);
	me->lost = r->last - r->first + 1 - me->delivered;
	return err;
}

static long rr_take(void *src, void *buf, uint32_t len, uint64_t *seq)
{
	uint64_t lost = 0; /* gaps: the caller counts what it got instead */

	return rr_read(src, buf, len, seq, &lost);
}

static int raw_ring_consumer(struct e2e_run *r, int idx)
{
	struct e2e_shared *sh = r->sh;
	uint8_t *buf = malloc(r->p->size);
	struct rr_reader rd;
	int err;

	if (!buf)
		return sbb_child_fail(&sh->err, idx, -ENOMEM, "out of memory");
	memset(buf, 0x5a, r->p->size); /* its pages now, not at the first record */
	/* The inherited writable mapping is the writer's: read through a read-only one. */
	munmap(r->ring.map, 4096 + r->ring.size);
	err = sbb_await_count(&sh->served, 1, SBB_STEP_TIMEOUT_MS);
	if (!err)
		err = rr_reader_open(r->ring.fd, r->ring.size, &rd);
	if (err) {
		free(buf);
		return sbb_child_fail(&sh->err, idx, err, "attach: %s", strerror(-err));
	}
	err = poll_source(r, idx, rr_take, &rd, buf);
	rr_reader_close(&rd);
	free(buf);
	consumer_done(r);
	return err;
}

static int stream_consumer(struct e2e_run *r, int idx)
{
	struct e2e_shared *sh = r->sh;
	unsigned k = consumer_of(idx);
	struct e2e_consumer *me = &sh->c[k];
	uint8_t *buf = malloc(READ_BUF);
	struct fault_window fw = { 0, false };
	size_t have = 0;
	uint64_t seq = 0;
	int fd = r->fds[k][0], err = 0;

	if (!buf)
		return sbb_child_fail(&sh->err, idx, -ENOMEM, "out of memory");
	memset(buf, 0x5a,
	       READ_BUF); /* its pages now (a zero fill may become calloc, which skips them) */
	sbb_prefault_shared();
	for (unsigned j = 0; j < SBB_MAX_CONSUMERS; j++) {
		if (r->fds[j][1] >= 0)
			close(r->fds[j][1]);
		if (j != k && r->fds[j][0] >= 0)
			close(r->fds[j][0]);
	}
	sb_fetch_add_release(&sh->ready, 1);
	bool said = false;
	while (seq < r->last) {
		window_check(&fw, sh);
		caught_up(r, &said, seq);
		ssize_t got = read(fd, buf + have, READ_BUF - have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			err = sbb_child_fail(&sh->err, idx, got < 0 ? -errno : -EPIPE,
					     "read after record %llu: %s", (unsigned long long)seq,
					     got < 0 ? strerror(errno) : "end of stream");
			break;
		}
		have += (size_t)got;
		size_t at = 0;
		while (have - at >= sizeof(struct frame)) {
			struct frame f;
			memcpy(&f, buf + at, sizeof(f));
			if (f.len != r->p->size || f.seq != seq + 1) {
				err = sbb_child_fail(&sh->err, idx, -EBADMSG,
						     "frame %llu of %u bytes after record %llu",
						     (unsigned long long)f.seq, f.len,
						     (unsigned long long)seq);
				goto out;
			}
			if (have - at < sizeof(f) + f.len)
				break;
			seq = f.seq;
			if (seq >= r->first)
				me->delivered++;
			at += sizeof(f) + f.len;
		}
		memmove(buf, buf + at, have - at);
		have -= at;
	}
out:
	me->t_end = sb__mono_ns();
	me->faults = window_close(&fw);
	me->lost = 0; /* a stream blocks the writer instead of dropping */
	close(fd);
	free(buf);
	consumer_done(r);
	return err;
}

#ifdef SBB_HAVE_IOX
static long iox_take(void *src, void *buf, uint32_t len, uint64_t *seq)
{
	int got = sbb_iox_take(src, buf, len, seq);

	return got > 0 ? (long)len : got;
}

static int iceoryx_consumer(struct e2e_run *r, int idx)
{
	struct e2e_shared *sh = r->sh;
	uint8_t *buf = malloc(r->p->size);
	struct sbb_iox *x;
	int err;

	if (!buf)
		return sbb_child_fail(&sh->err, idx, -ENOMEM, "out of memory");
	memset(buf, 0x5a, r->p->size); /* its pages now, not at the first record */
	err = sbb_await_count(&sh->served, 1, SBB_STEP_TIMEOUT_MS);
	if (!err)
		err = sbb_iox_sub_open(r->instance, &x);
	if (err) {
		free(buf);
		return sbb_child_fail(&sh->err, idx, err, "iceoryx subscriber: %s", strerror(-err));
	}
	err = poll_source(r, idx, iox_take, x, buf);
	sbb_iox_close(x);
	free(buf);
	consumer_done(r);
	return err;
}
#endif

static int e2e_consumer(void *arg, int idx)
{
	struct e2e_run *r = arg;

	sbb_pin(1 + consumer_of(idx) % (sbb_ncpus() > 1 ? sbb_ncpus() - 1 : 1));
	if (!strcmp(r->system, "snapbridge"))
		return snapbridge_consumer(r, idx);
	if (!strcmp(r->system, "raw_ring"))
		return raw_ring_consumer(r, idx);
#ifdef SBB_HAVE_IOX
	if (!strcmp(r->system, "iceoryx"))
		return iceoryx_consumer(r, idx);
#endif
	return stream_consumer(r, idx);
}

/* ---- the parent -------------------------------------------------------------------- */

static int make_streams(struct e2e_run *r)
{
	for (unsigned k = 0; k < r->p->consumers; k++) {
		int rc;

		if (!strcmp(r->system, "pipe")) {
			rc = pipe2(r->fds[k], O_CLOEXEC);
			if (rc == 0)
				(void)fcntl(r->fds[k][1], F_SETPIPE_SZ,
					    PIPE_BYTES); /* best effort */
		} else {
			rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r->fds[k]);
		}
		if (rc != 0)
			return -errno;
	}
	return 0;
}

int sbb_e2e_run(const char *system, const struct sbb_params *p, struct sbb_sample *out)
{
	size_t size = sizeof(struct e2e_shared) + p->nlat * sizeof(uint64_t);
	struct e2e_run r = { .system = system, .p = p };
	struct sbb_group g;
	char label[96];
	int err = 0;

	memset(out, 0, sizeof(*out));
	bool known = !strcmp(system, "snapbridge") || !strcmp(system, "raw_ring") ||
		     !strcmp(system, "pipe") || !strcmp(system, "unix_stream");
#ifdef SBB_HAVE_IOX
	known |= !strcmp(system, "iceoryx");
#endif
	if (!known)
		return -ENOENT;
	if (p->consumers < 1 || p->consumers > SBB_MAX_CONSUMERS)
		return -EINVAL;
	for (unsigned k = 0; k < SBB_MAX_CONSUMERS; k++)
		r.fds[k][0] = r.fds[k][1] = -1;
	r.ring.fd = -1;
	/* Sequence numbers: what the writer's phases put before the timed one. */
	uint64_t before =
	    (!strcmp(system, "snapbridge") || !strcmp(system, "raw_ring") ? 2 : 1) * p->warm +
	    p->nlat;
	r.first = before + 1;
	r.last = before + p->n;
	r.sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r.sh == MAP_FAILED)
		return -errno;
	sbb_socket_name(r.socket, sizeof(r.socket));
	snprintf(r.instance, sizeof(r.instance), "%.60s", r.socket + 1);
	if (!strcmp(system, "raw_ring"))
		err = rr_create(p->ring_bytes, &r.ring);
	else if (!strcmp(system, "pipe") || !strcmp(system, "unix_stream"))
		err = make_streams(&r);
	snprintf(label, sizeof(label), "%s end-to-end, %u bytes, %u consumer(s)", system, p->size,
		 p->consumers);
	if (err) {
		fprintf(stderr, "bench: %s: %s\n", label, strerror(-err));
		goto out;
	}
	sbb_group_init(&g, &r.sh->err);
	err = sbb_spawn(&g, "writer", e2e_writer, &r);
	for (unsigned k = 0; k < p->consumers && !err; k++)
		err = sbb_spawn(&g, "consumer", e2e_consumer, &r);
	if (err)
		sbb_spawn_failed(&g, label, err);
	/* The parent keeps no stream end open: a dead peer is an end of stream. */
	for (unsigned k = 0; k < SBB_MAX_CONSUMERS; k++)
		for (int e = 0; e < 2; e++)
			if (r.fds[k][e] >= 0)
				close(r.fds[k][e]);
	int rerr = sbb_reap(&g, label, SBB_RUN_TIMEOUT_MS);
	err = err ? err : rerr;
	if (err)
		goto out;

	struct e2e_shared *sh = r.sh;
	uint64_t t_end = 0;
	for (unsigned k = 0; k < p->consumers; k++) {
		const struct e2e_consumer *c = &sh->c[k];

		t_end = c->t_end > t_end ? c->t_end : t_end;
		out->consumer_faults += c->faults;
		out->delivered += c->delivered;
		out->stores += p->n;
		if (c->delivered + c->lost != p->n) {
			fprintf(
			    stderr,
			    "bench: %s: consumer %u: %llu delivered + %llu lost != %llu stored\n",
			    label, k, (unsigned long long)c->delivered, (unsigned long long)c->lost,
			    (unsigned long long)p->n);
			err = -EPROTO;
		}
		if (!strcmp(system, "snapbridge")) {
			const struct sb_drain_counts *d = &c->counts;
			if (d->delivered + d->superseded + d->evicted + d->lapped + d->torn !=
			    d->stores) {
				fprintf(stderr, "bench: %s: consumer %u: outcomes do not add up\n",
					label, k);
				err = -EPROTO;
			}
			out->counts.stores += d->stores;
			out->counts.delivered += d->delivered;
			out->counts.superseded += d->superseded;
			out->counts.evicted += d->evicted;
			out->counts.lapped += d->lapped;
			out->counts.torn += d->torn;
			out->has_counts = true;
		}
	}
	out->rate = (double)out->delivered / p->consumers * 1e9 / (double)(t_end - sh->t0);
	out->writer_rate = (double)p->n * 1e9 / (double)sh->writer_ns;
	out->cpu_rate = (double)p->n * 1e9 / (double)sh->writer_cpu_ns;
	out->faults = sh->writer_faults;
	out->has_consumer_faults = true;
	sbb_latency_fill(sh->lat, p->nlat, out);
out:
	if (r.ring.map)
		rr_destroy(&r.ring);
	munmap(r.sh, size);
	return err;
}
