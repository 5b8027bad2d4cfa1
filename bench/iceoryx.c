/*
 * bench/iceoryx.c - the iceoryx baseline through Debian's C binding
 * (libiceoryx-binding-c-dev), compiled only when CMake finds it (then
 * SBB_HAVE_IOX is defined for the benchmark's sources).
 *
 * The benchmark starts its own iox-roudi (from the iceoryx package) with
 * a config of its own: one mempool per record size with room for a full
 * subscriber queue, so a loan never fails for want of chunks. The
 * publisher loans a chunk, copies the record in, writes the sequence
 * number into its first 8 bytes and publishes; a subscriber (queue of
 * 256, discard-oldest when full, as the publisher's too-slow policy)
 * takes each chunk, copies it out, and releases it.
 */
#define _GNU_SOURCE
#include "iox.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iceoryx_binding_c/enums.h>
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>

#include "../ring/clock.h"
#include "harness.h"

#define ROUDI	    "iox-roudi"
#define QUEUE	    256
#define POOL_CHUNKS 300
#define READY_LINE  "RouDi is ready for clients"

static pid_t roudi_pid = -1;
static char dir[64];

bool sbb_iox_available(char *why, size_t len)
{
	/* The binding is linked in; RouDi must be on the PATH (package iceoryx). */
	if (sbb_on_path(ROUDI))
		return true;
	snprintf(why, len, "%s is not on the PATH (Debian package iceoryx)", ROUDI);
	return false;
}

/* One pool per measured size, each chunk the record plus iceoryx's chunk header. */
static int write_config(const char *path)
{
	static const unsigned sizes[] = { 64, 1024, 4096, 65536, 262144 };
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "[general]\nversion = 1\n\n[[segment]]\n");
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		fprintf(f, "\n[[segment.mempool]]\nsize = %u\ncount = %u\n",
			(sizes[i] + 256 + 63) & ~63u, POOL_CHUNKS);
	return fclose(f) == 0 ? 0 : -errno;
}

static bool log_says_ready(const char *log)
{
	char buf[8192];
	FILE *f = fopen(log, "r");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, READY_LINE) != NULL;
}

int sbb_iox_start(void)
{
	char cfg[96], log[96];
	int err;

	snprintf(dir, sizeof(dir), "/tmp/snapbridge-bench-iox-XXXXXX");
	if (!mkdtemp(dir))
		return -errno;
	snprintf(cfg, sizeof(cfg), "%s/roudi.toml", dir);
	snprintf(log, sizeof(log), "%s/roudi.log", dir);
	err = write_config(cfg);
	if (err)
		return err;
	fflush(NULL);
	roudi_pid = fork();
	if (roudi_pid < 0)
		return -errno;
	if (roudi_pid == 0) {
		/* RouDi dies with the benchmark, however the benchmark ends. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp(ROUDI, ROUDI, "-c", cfg, "-l", "info", (char *)NULL);
		_exit(127);
	}
	uint64_t deadline = sbb_deadline_after_ms(10000);
	while (!log_says_ready(log)) {
		int st;
		if (waitpid(roudi_pid, &st, WNOHANG) == roudi_pid) {
			roudi_pid = -1;
			fprintf(stderr, "bench: %s exited at start; its log is %s\n", ROUDI, log);
			return -ECHILD;
		}
		if (sb__mono_ns() > deadline) {
			fprintf(stderr, "bench: %s not ready within 10 s; its log is %s\n", ROUDI,
				log);
			sbb_iox_stop();
			return -ETIMEDOUT;
		}
		sbb_sleep_ns(20000000);
	}
	return 0;
}

void sbb_iox_stop(void)
{
	char path[96];

	if (roudi_pid > 0) {
		int st;
		kill(roudi_pid, SIGTERM);
		uint64_t deadline = sbb_deadline_after_ms(5000);
		while (waitpid(roudi_pid, &st, WNOHANG) != roudi_pid) {
			if (sb__mono_ns() > deadline) {
				kill(roudi_pid, SIGKILL);
				waitpid(roudi_pid, &st, 0);
				break;
			}
			sbb_sleep_ns(10000000);
		}
		roudi_pid = -1;
	}
	if (dir[0]) {
		snprintf(path, sizeof(path), "%s/roudi.toml", dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/roudi.log", dir);
		unlink(path);
		rmdir(dir);
		dir[0] = '\0';
	}
}

struct sbb_iox {
	iox_pub_storage_t pub_storage;
	iox_sub_storage_t sub_storage;
	iox_pub_t pub;
	iox_sub_t sub;
};

static void runtime_init(const char *role)
{
	char name[64];

	snprintf(name, sizeof(name), "sbb-%s-%d", role, (int)getpid());
	iox_set_loglevel(Iceoryx_LogLevel_Warn);
	iox_runtime_init(name);
}

int sbb_iox_pub_open(const char *instance, struct sbb_iox **out)
{
	struct sbb_iox *x = calloc(1, sizeof(*x));
	iox_pub_options_t o;

	if (!x)
		return -ENOMEM;
	runtime_init("pub");
	iox_pub_options_init(&o);
	o.historyCapacity = 0;
	o.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_DISCARD_OLDEST_DATA;
	x->pub = iox_pub_init(&x->pub_storage, "snapbridge-bench", instance, "records", &o);
	if (!x->pub) {
		free(x);
		return -EIO;
	}
	*out = x;
	return 0;
}

int sbb_iox_put(struct sbb_iox *x, const void *rec, uint32_t len, uint64_t seq)
{
	void *chunk;
	enum iox_AllocationResult res = iox_pub_loan_chunk(x->pub, &chunk, len);

	if (res != AllocationResult_SUCCESS)
		return -ENOBUFS;
	memcpy(chunk, rec, len);
	memcpy(chunk, &seq, sizeof(seq));
	iox_pub_publish_chunk(x->pub, chunk);
	return 0;
}

int sbb_iox_sub_open(const char *instance, struct sbb_iox **out)
{
	struct sbb_iox *x = calloc(1, sizeof(*x));
	iox_sub_options_t o;

	if (!x)
		return -ENOMEM;
	runtime_init("sub");
	iox_sub_options_init(&o);
	o.queueCapacity = QUEUE;
	o.historyRequest = 0;
	o.queueFullPolicy = QueueFullPolicy_DISCARD_OLDEST_DATA;
	x->sub = iox_sub_init(&x->sub_storage, "snapbridge-bench", instance, "records", &o);
	if (!x->sub) {
		free(x);
		return -EIO;
	}
	uint64_t deadline = sbb_deadline_after_ms(SBB_STEP_TIMEOUT_MS);
	while (iox_sub_get_subscription_state(x->sub) != SubscribeState_SUBSCRIBED) {
		if (sb__mono_ns() > deadline) {
			sbb_iox_close(x);
			return -ETIMEDOUT;
		}
		sbb_sleep_ns(1000000);
	}
	*out = x;
	return 0;
}

int sbb_iox_take(struct sbb_iox *x, void *buf, uint32_t len, uint64_t *seq)
{
	const void *chunk;
	enum iox_ChunkReceiveResult res = iox_sub_take_chunk(x->sub, &chunk);

	if (res == ChunkReceiveResult_NO_CHUNK_AVAILABLE)
		return 0;
	if (res != ChunkReceiveResult_SUCCESS)
		return -EIO;
	memcpy(buf, chunk, len);
	memcpy(seq, buf, sizeof(*seq));
	iox_sub_release_chunk(x->sub, chunk);
	return 1;
}

void sbb_iox_close(struct sbb_iox *x)
{
	if (!x)
		return;
	if (x->pub)
		iox_pub_deinit(x->pub);
	if (x->sub)
		iox_sub_deinit(x->sub);
	free(x);
}
