#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint8_t pattern(uint64_t seed, size_t i)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull;

	x ^= x >> 31;
	return (uint8_t)(x * 0x94d049bb133111ebull >> 56);
}

/* Layout: bin32 header, 8 seed bytes, then the pattern. */
size_t tu_report(uint8_t *buf, size_t n, uint64_t seed)
{
	size_t body = n < 8 ? 8 : n;

	buf[0] = 0xc6;
	buf[1] = (uint8_t)(body >> 24);
	buf[2] = (uint8_t)(body >> 16);
	buf[3] = (uint8_t)(body >> 8);
	buf[4] = (uint8_t)body;
	memcpy(buf + 5, &seed, 8);
	for (size_t i = 8; i < body; i++)
		buf[5 + i] = pattern(seed, i);
	return body + 5;
}

int tu_report_check(const void *report, size_t len, uint64_t *seed_out)
{
	const uint8_t *p = report;
	uint64_t seed;

	if (len < 13 || p[0] != 0xc6)
		return -1;
	size_t body = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
	if (body + 5 != len)
		return -1;
	memcpy(&seed, p + 5, 8);
	for (size_t i = 8; i < body; i++)
		if (p[5 + i] != pattern(seed, i))
			return -1;
	if (seed_out)
		*seed_out = seed;
	return 0;
}

int tu_tally_entry(void *tally, const struct sb_entry *e)
{
	struct tu_tally *t = tally;
	uint64_t seed;
	bool in_order =
	    t->contiguous ? e->store_seq == t->last_seq + 1 : e->store_seq > t->last_seq;

	if (t->multi) {
		uint64_t w = 0, n = 0;

		if (tu_report_check(e->report, e->report_len, &seed) == 0) {
			w = (seed >> 48) - 1;
			n = seed & ((1ull << 48) - 1);
		}
		if (w >= TU_WRITERS || n <= t->last_n[w] || e->store_seq <= t->last_seq)
			t->bad++;
		else
			t->last_n[w] = n;
	} else if (tu_report_check(e->report, e->report_len, &seed) != 0 || seed != e->store_seq ||
		   !in_order) {
		t->bad++;
	}
	t->last_seq = e->store_seq;
	t->delivered++;
	return 0;
}

int tu_drain_to_end(struct sb_consumer *c, sb_entry_fn fn, void *user)
{
	uint64_t before, after, stores;

	do {
		sb_consumer_cursor(c, &before);
		int err = sb_consumer_drain(c, fn, user, NULL);
		if (err)
			return err;
		sb_consumer_cursor(c, &after);
		sb_consumer_store_count(c, &stores);
	} while (after < stores && after != before);
	return 0;
}

void tu_config(struct sb_config *cfg, uint32_t max_snapshots, uint32_t max_events,
	       uint64_t log_bytes)
{
	sb_config_default(cfg);
	cfg->max_snapshots = max_snapshots;
	cfg->max_events = max_events;
	cfg->log_bytes = log_bytes;
	cfg->aux_bytes = SB_LOG_BYTES_MIN;
}

uint8_t *tu_read_region(int fd, size_t *size)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return NULL;
	uint8_t *p = malloc((size_t)st.st_size);
	if (p && pread(fd, p, (size_t)st.st_size, 0) != st.st_size) {
		free(p);
		return NULL;
	}
	*size = (size_t)st.st_size;
	return p;
}

int tu_aux_put(struct sb_bridge *b, uint64_t i)
{
	char tag[32], cgroup[32];

	if (i % 2) {
		struct sb_kop_value v = { .kind = SB_KOP_U64, .num = i * 7 };
		struct sb_kop_reply r = { .id = i, .success = i % 3 != 0 };

		if (r.success) {
			r.read_values = &v;
			r.n_values = 1;
		} else {
			r.reason = "seeded failure";
		}
		snprintf(tag, sizeof(tag), "kop_%llu", (unsigned long long)i);
		return sb_bridge_record_kernel_op_reply(b, tag, &r);
	}
	int32_t pids[5];
	size_t n = (size_t)(i % 5);

	for (size_t k = 0; k < n; k++)
		pids[k] = (int32_t)(i + k);
	snprintf(tag, sizeof(tag), "cg_%llu", (unsigned long long)i);
	snprintf(cgroup, sizeof(cgroup), "/sb/%llu", (unsigned long long)i);
	return sb_bridge_record_cgroup_procs(b, tag, cgroup, pids, n);
}

bool tu_aux_check(const struct sb_aux_item *item)
{
	uint64_t i = item->seq;
	char want[32];

	if (i % 2) {
		const struct sb_kop_reply *r = item->reply;

		snprintf(want, sizeof(want), "kop_%llu", (unsigned long long)i);
		if (item->kind != SB_AUX_KERNEL_OP || strcmp(item->tag, want) != 0 || !r ||
		    r->id != i || r->success != (i % 3 != 0))
			return false;
		if (!r->success)
			return r->n_values == 0 && r->reason &&
			       strcmp(r->reason, "seeded failure") == 0;
		return r->n_values == 1 && r->read_values[0].kind == SB_KOP_U64 &&
		       r->read_values[0].num == i * 7;
	}
	const struct sb_cgroup_procs *p = item->procs;

	snprintf(want, sizeof(want), "cg_%llu", (unsigned long long)i);
	if (item->kind != SB_AUX_CGROUP_PROCS || !p || strcmp(item->tag, want) != 0 ||
	    strcmp(p->tag, want) != 0)
		return false;
	snprintf(want, sizeof(want), "/sb/%llu", (unsigned long long)i);
	if (strcmp(p->cgroup, want) != 0 || p->n_pids != i % 5)
		return false;
	for (size_t k = 0; k < p->n_pids; k++)
		if (p->pids[k] != (int32_t)(i + k))
			return false;
	return true;
}

char *tu_slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return strdup("");
	FILE *m = open_memstream(&buf, &len);
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(m);
	fclose(f);
	return buf;
}
