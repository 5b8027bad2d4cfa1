/*
 * shm/handover.h - the hand-over message a coordinator sends each consumer
 * that connects to its socket, and the descriptors that ride with it.
 *
 * The socket is SOCK_SEQPACKET, so the message arrives whole or not at
 * all. It is one struct sb_hello, with SCM_RIGHTS carrying, in order:
 *   [0] the data memfd, read-only (O_RDONLY; sealed against future writes)
 *   [1] this consumer's own control page, a memfd made for it alone,
 *       read-write (sealed against shrink, grow and further seals)
 * A refusal is the same struct with status < 0, a reason, and no
 * descriptors. After the hello the consumer sends only arm messages
 * (ring/wake.h) and the coordinator only one-byte wake messages to a
 * consumer that armed for polling; the connection also lets each side
 * see the other hang up.
 *
 * The receiver treats every byte as hostile: sizes, magic, version,
 * descriptor count and the reason string are all checked.
 */
#ifndef SB_SHM_HANDOVER_H
#define SB_SHM_HANDOVER_H

#include <stdint.h>

#include "../ring/layout.h"

#define SB_HELLO_MAGIC	 "SNAPHELO"
#define SB_HELLO_VERSION 2
#define SB_HELLO_FDS	 2
#define SB_HELLO_REASON	 200

enum { SB_HELLO_FD_DATA = 0, SB_HELLO_FD_CTL = 1 };

struct sb_hello {
	char magic[8]; /* "SNAPHELO", no NUL */
	uint16_t version;
	uint16_t size;	/* sizeof(struct sb_hello) */
	int32_t status; /* 0, or the negative errno of a refusal */
	uint32_t nfds;	/* SB_HELLO_FDS when status == 0, else 0 */
	uint32_t slot;	/* the consumer's entry in the coordinator's table (informational) */
	uint64_t layout_hash;
	uint64_t data_size;
	int32_t coord_pid;
	uint32_t reserved0;
	uint64_t coord_start_time;
	char reason[SB_HELLO_REASON]; /* NUL-terminated text when status < 0 */
};
SB_ASSERT_LAYOUT(struct sb_hello, version, 8);
SB_ASSERT_LAYOUT(struct sb_hello, status, 12);
SB_ASSERT_LAYOUT(struct sb_hello, nfds, 16);
SB_ASSERT_LAYOUT(struct sb_hello, slot, 20);
SB_ASSERT_LAYOUT(struct sb_hello, layout_hash, 24);
SB_ASSERT_LAYOUT(struct sb_hello, data_size, 32);
SB_ASSERT_LAYOUT(struct sb_hello, coord_pid, 40);
SB_ASSERT_LAYOUT(struct sb_hello, coord_start_time, 48);
SB_ASSERT_LAYOUT(struct sb_hello, reason, 56);
SB_ASSERT_SIZE(struct sb_hello, 256);

/* Fill h as an acceptance (status 0) or as a refusal with a formatted reason. */
void sb__hello_accept(struct sb_hello *h, uint32_t slot, uint64_t data_size, int32_t pid,
		      uint64_t start_time);
void sb__hello_refuse(struct sb_hello *h, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Send h with nfds descriptors (0 or SB_HELLO_FDS). 0 or -errno. */
int sb__hello_send(int sock, const struct sb_hello *h, const int *fds, int nfds);

/*
 * Check len received bytes as a hello with nfds descriptors attached.
 * Returns 0 for a valid acceptance, the refusal's negative status (with
 * its reason in sb_last_error()), or -EPROTO / -EBADMSG for a message that
 * is not a valid hello. Never reads past len.
 */
int sb__hello_parse(const void *buf, size_t len, int nfds, struct sb_hello *out);

/*
 * Wait up to timeout_ms for the hello on sock, receive it and its
 * descriptors (close-on-exec) and parse it. On success fds[] holds
 * SB_HELLO_FDS descriptors the caller owns; on any failure none is left open.
 */
int sb__hello_recv(int sock, int timeout_ms, struct sb_hello *out, int fds[SB_HELLO_FDS]);

#endif
