/*
 * fuzz_hello.c - the consumer's handshake parser (shm/handover.c) on
 * arbitrary bytes: sb__hello_parse() directly, with any descriptor count,
 * and sb__hello_recv() on a SOCK_SEQPACKET pair, as a consumer receives it;
 * and the other direction, the serving thread's parser of a consumer's
 * arm messages (sb__arm_parse, ring/wake.c), on the same bytes.
 *
 * Input: byte 0 is the descriptor count the kernel reported (0..3), the
 * rest is the message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <snapbridge/snapbridge.h>

#include "../../shm/handover.h"
#include "../../ring/layout.h"
#include "../../ring/wake.h"
#include "fuzz.h"

SB_FUZZ_MAIN

void sb_fuzz_init(void)
{
}

static void check_result(int err, const struct sb_hello *h)
{
	if (err == 0) {
		SB_FUZZ_CHECK(h->status == 0 && h->nfds == SB_HELLO_FDS && h->size == sizeof(*h));
		SB_FUZZ_CHECK(h->layout_hash == sb__layout_hash());
	} else {
		/* A refusal's own status, or a protocol error; never a positive value. */
		SB_FUZZ_CHECK(err < 0 && err >= -4095);
		SB_FUZZ_CHECK(strlen(sb_last_error()) < 4096);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sb_hello h;
	int sv[2], fds[SB_HELLO_FDS];

	if (size < 1)
		return 0;
	/* Exactly size - 1 bytes: ASan sees any read past the message. */
	uint8_t *msg = malloc(size - 1 ? size - 1 : 1);
	memcpy(msg, data + 1, size - 1);
	check_result(sb__hello_parse(msg, size - 1, data[0] % 4, &h), &h);

	/* An arm is accepted only whole, with a known mode and channels. */
	struct sb_arm a;
	int arm_err = sb__arm_parse(msg, size - 1, &a);
	if (arm_err == 0)
		SB_FUZZ_CHECK(size - 1 == sizeof(a) &&
			      (a.mode == SB_ARM_FUTEX || a.mode == SB_ARM_POLL) && a.chans &&
			      !(a.chans & ~SB_WAKE_CHANS));
	else
		SB_FUZZ_CHECK(arm_err == -EBADMSG);

	/* The same bytes through a socket, as sb_consumer_connect receives them. */
	if (size - 1 <= 4096 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0) {
		if (send(sv[0], msg, size - 1, MSG_NOSIGNAL) == (ssize_t)(size - 1)) {
			int err = sb__hello_recv(sv[1], 0, &h, fds);
			/* No descriptors rode along, so nothing can be accepted. */
			SB_FUZZ_CHECK(err < 0);
		}
		close(sv[0]);
		close(sv[1]);
	}
	free(msg);
	return 0;
}

void sb_fuzz_seeds(const char *dir)
{
	uint8_t buf[1 + sizeof(struct sb_hello)];
	struct sb_hello h;

	memset(&h, 0, sizeof(h));
	sb__hello_accept(&h, 3, 1 << 20, 1234, 5678);
	buf[0] = SB_HELLO_FDS;
	memcpy(buf + 1, &h, sizeof(h));
	sb_fuzz_seed(dir, "accept", buf, sizeof(buf));
	memset(&h, 0, sizeof(h));
	sb__hello_refuse(&h, -EACCES, "uid %d is not allowed", 1000);
	buf[0] = 0;
	memcpy(buf + 1, &h, sizeof(h));
	sb_fuzz_seed(dir, "refuse", buf, sizeof(buf));
	sb_fuzz_seed(dir, "short", buf, 13);
	struct sb_arm a;
	sb__arm_init(&a, SB_ARM_POLL, SB_WAKE_REC | SB_WAKE_EV);
	a.rec_pos = 4096;
	buf[0] = 0;
	memcpy(buf + 1, &a, sizeof(a));
	sb_fuzz_seed(dir, "arm", buf, 1 + sizeof(a));
}
