/*
 * bench/shape.c - the reports the benchmark stores, of an exact size:
 *
 *   bin   one msgpack bin (a header and opaque bytes): validating it is
 *         one step, so it measures the structure and nothing else.
 *   dump  a scheduler-state dump as a capture writes one: a map with a
 *         few top-level fields and an array of per-CPU maps (small
 *         integers, short strings, nested arrays of run-queue entries,
 *         floats, a nested map of the running task), closed by a string
 *         that pads it to the exact size. About 5.5 bytes per msgpack
 *         object, as real dumps have.
 *
 * Both are deterministic: the same size gives the same bytes, in every
 * process and for every system.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

const char *sbb_shape_name(enum sbb_shape shape)
{
	return shape == SBB_SHAPE_DUMP ? "dump" : "bin";
}

size_t sbb_make_report(uint8_t *buf, size_t len)
{
	size_t body;

	if (len - 2 <= 0xff) {
		body = 2;
		buf[0] = 0xc4;
		buf[1] = (uint8_t)(len - 2);
	} else if (len - 3 <= 0xffff) {
		body = 3;
		buf[0] = 0xc5;
		buf[1] = (uint8_t)((len - 3) >> 8);
		buf[2] = (uint8_t)(len - 3);
	} else {
		body = 5;
		buf[0] = 0xc6;
		for (int i = 0; i < 4; i++)
			buf[1 + i] = (uint8_t)((len - 5) >> (24 - 8 * i));
	}
	memset(buf + body, 0x5a, len - body);
	return body;
}

/* ---- a minimal msgpack writer (writes into a buffer known to be large enough) ------ */

struct mp {
	uint8_t *p;
	size_t n;
	uint64_t objects;
};

static void put_be(struct mp *w, uint8_t type, uint64_t v, int bytes)
{
	w->p[w->n++] = type;
	for (int i = bytes - 1; i >= 0; i--)
		w->p[w->n++] = (uint8_t)(v >> (8 * i));
}

static void put_uint(struct mp *w, uint64_t v)
{
	w->objects++;
	if (v < 0x80)
		w->p[w->n++] = (uint8_t)v;
	else if (v <= 0xff)
		put_be(w, 0xcc, v, 1);
	else if (v <= 0xffff)
		put_be(w, 0xcd, v, 2);
	else if (v <= 0xffffffffu)
		put_be(w, 0xce, v, 4);
	else
		put_be(w, 0xcf, v, 8);
}

static void put_int(struct mp *w, int64_t v)
{
	if (v >= 0) {
		put_uint(w, (uint64_t)v);
		return;
	}
	w->objects++;
	if (v >= -32)
		w->p[w->n++] = (uint8_t)v;
	else if (v >= -128)
		put_be(w, 0xd0, (uint8_t)v, 1);
	else if (v >= -32768)
		put_be(w, 0xd1, (uint16_t)v, 2);
	else
		put_be(w, 0xd2, (uint32_t)v, 4);
}

static void put_f64(struct mp *w, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	w->objects++;
	put_be(w, 0xcb, v, 8);
}

static void put_f32(struct mp *w, float f)
{
	uint32_t v;

	memcpy(&v, &f, sizeof(v));
	w->objects++;
	put_be(w, 0xca, v, 4);
}

static void put_bool(struct mp *w, int b)
{
	w->objects++;
	w->p[w->n++] = b ? 0xc3 : 0xc2;
}

static void put_nil(struct mp *w)
{
	w->objects++;
	w->p[w->n++] = 0xc0;
}

/* A str header for len bytes. */
static void put_str_hdr(struct mp *w, size_t len)
{
	w->objects++;
	if (len < 32)
		w->p[w->n++] = (uint8_t)(0xa0 | len);
	else if (len <= 0xff)
		put_be(w, 0xd9, len, 1);
	else if (len <= 0xffff)
		put_be(w, 0xda, len, 2);
	else
		put_be(w, 0xdb, len, 4);
}

static void put_str(struct mp *w, const char *s)
{
	size_t len = strlen(s);

	put_str_hdr(w, len);
	memcpy(w->p + w->n, s, len);
	w->n += len;
}

static void put_map(struct mp *w, unsigned pairs)
{
	w->objects++;
	if (pairs < 16)
		w->p[w->n++] = (uint8_t)(0x80 | pairs);
	else
		put_be(w, 0xde, pairs, 2);
}

static void put_array(struct mp *w, unsigned items)
{
	w->objects++;
	if (items < 16)
		w->p[w->n++] = (uint8_t)(0x90 | items);
	else
		put_be(w, 0xdc, items, 2);
}

/* ---- the dump ----------------------------------------------------------------------- */

/* A fixed pseudo-random sequence (xorshift), so every process writes the same dump. */
static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* One CPU's entry: what a scheduler-state dump holds per CPU. */
static void put_cpu(struct mp *w, unsigned cpu, uint32_t *rnd)
{
	static const char *const policies[] = { "SCHED_NORMAL", "SCHED_FIFO", "SCHED_BATCH",
						"SCHED_IDLE" };
	static const char *const domains[] = { "SMT", "MC", "NUMA" };
	static const char *const cgroups[] = { "/", "/system.slice/sshd.service",
					       "/user.slice/user-1000.slice/session-2.scope",
					       "/kubepods/burstable/pod-web" };
	char comm[24];
	unsigned nr = next_rand(rnd) % 5;
	unsigned queued = 1 + next_rand(rnd) % 3;

	put_map(w, 12);
	put_str(w, "cpu");
	put_uint(w, cpu);
	put_str(w, "online");
	put_bool(w, cpu % 61 != 60);
	put_str(w, "nr_running");
	put_uint(w, nr);
	put_str(w, "nr_switches");
	put_uint(w, 100000 + next_rand(rnd) % 50000000);
	put_str(w, "load_avg");
	put_f64(w, (double)(next_rand(rnd) % 100000) / 1000.0);
	put_str(w, "util_avg");
	put_uint(w, next_rand(rnd) % 1025);
	put_str(w, "capacity");
	put_f32(w, 1024.0f - (float)(cpu % 4) * 64.0f);
	put_str(w, "curr");
	put_map(w, 6);
	put_str(w, "pid");
	put_uint(w, 1 + next_rand(rnd) % 4000000);
	put_str(w, "comm");
	snprintf(comm, sizeof(comm), nr ? "worker/%u:%u" : "swapper/%u", cpu, nr);
	put_str(w, comm);
	put_str(w, "prio");
	put_uint(w, 100 + next_rand(rnd) % 40);
	put_str(w, "policy");
	put_str(w, policies[next_rand(rnd) % 4]);
	put_str(w, "cgroup");
	put_str(w, cgroups[next_rand(rnd) % 4]);
	put_str(w, "vruntime");
	put_uint(w, (uint64_t)next_rand(rnd) << 20 | next_rand(rnd));
	put_str(w, "rq");
	put_array(w, queued);
	for (unsigned q = 0; q < queued; q++) {
		put_array(w, 4);
		put_uint(w, 1 + next_rand(rnd) % 4000000);
		put_uint(w, 100 + next_rand(rnd) % 40);
		put_uint(w, next_rand(rnd) % 3 ? 1024 : 88761);
		put_int(w, (int64_t)(next_rand(rnd) % 2000) - 1000);
	}
	put_str(w, "clock");
	put_array(w, 2);
	put_uint(w, (uint64_t)next_rand(rnd) << 24 | next_rand(rnd));
	put_uint(w, (uint64_t)next_rand(rnd) << 24 | next_rand(rnd));
	put_str(w, "domains");
	put_array(w, 3);
	for (unsigned d = 0; d < 3; d++)
		put_str(w, domains[d]);
	put_str(w, "dl_server");
	put_nil(w);
}

/* The top level before the CPUs: {"schema", "version", "ts_ns", "cpus": [...], "pad"}. */
static void put_head(struct mp *w)
{
	put_map(w, 5);
	put_str(w, "schema");
	put_str(w, "sched_state");
	put_str(w, "version");
	put_uint(w, 3);
	put_str(w, "ts_ns");
	put_uint(w, 1764201600123456789ull);
	put_str(w, "cpus");
	w->objects++;
	put_be(w, 0xdc, 0, 2); /* array 16 always, so the count can be filled in afterwards */
}

/* More than one CPU's entry ever takes. */
#define CPU_MAX 512
/* The "pad" key and the widest pad header (str 16). */
#define TAIL_MAX (4 + 3)

uint64_t sbb_make_dump(uint8_t *buf, size_t len)
{
	uint8_t scratch[CPU_MAX];
	struct mp w = { buf, 0, 0 };
	uint32_t rnd = 0x9e3779b9u;
	unsigned ncpus = 0;

	put_head(&w);
	if (w.n + TAIL_MAX > len) {
		sbb_make_report(buf, len); /* too small for a dump */
		return 1;
	}
	size_t count_at = w.n - 2;
	for (; ncpus < 0xffff; ncpus++) {
		struct mp s = { scratch, 0, 0 };
		uint32_t r = rnd;

		put_cpu(&s, ncpus, &r);
		if (w.n + s.n + TAIL_MAX > len)
			break;
		memcpy(w.p + w.n, scratch, s.n);
		w.n += s.n;
		w.objects += s.objects;
		rnd = r;
	}
	buf[count_at] = (uint8_t)(ncpus >> 8);
	buf[count_at + 1] = (uint8_t)ncpus;
	put_str(&w, "pad");
	/* The rest of len: one string whose header width fits its length. */
	size_t rest = len - w.n;
	size_t hdr = rest - 1 < 32 ? 1 : rest - 2 <= 0xff ? 2 : 3;
	put_str_hdr(&w, rest - hdr);
	memset(w.p + w.n, 'x', rest - hdr);
	w.n += rest - hdr;
	return w.objects;
}

uint64_t sbb_make_shaped(enum sbb_shape shape, uint8_t *buf, size_t len)
{
	if (shape == SBB_SHAPE_DUMP)
		return sbb_make_dump(buf, len);
	sbb_make_report(buf, len);
	return 1;
}
