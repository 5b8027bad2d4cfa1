/*
 * bench/iox.h - the iceoryx baseline (bench/iceoryx.c): RouDi started and
 * stopped by pid, a publisher that loans, writes and publishes, a
 * subscriber that takes and copies out. Compiled only with the C binding
 * (SBB_HAVE_IOX); callers test that macro first.
 */
#ifndef SB_BENCH_IOX_H
#define SB_BENCH_IOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sbb_iox;

/* Whether the baseline can run here; if not, why (for the note in the table). */
bool sbb_iox_available(char *why, size_t len);

/* Start iox-roudi with the benchmark's mempools and wait until it is ready; stop it. */
int sbb_iox_start(void);
void sbb_iox_stop(void);

/* In a child process: a publisher / subscriber of service instance. 0 or -errno. */
int sbb_iox_pub_open(const char *instance, struct sbb_iox **out);
int sbb_iox_sub_open(const char *instance, struct sbb_iox **out);

/* Loan, copy len bytes of rec in (seq in its first 8 bytes), publish. 0 or -ENOBUFS. */
int sbb_iox_put(struct sbb_iox *x, const void *rec, uint32_t len, uint64_t seq);

/* Take one chunk and copy len bytes out: 1, 0 when none is queued, or -EIO. */
int sbb_iox_take(struct sbb_iox *x, void *buf, uint32_t len, uint64_t *seq);

void sbb_iox_close(struct sbb_iox *x);

#endif
