/*
 * shm/handover.c - building, sending, receiving and checking the hello.
 */
#define _GNU_SOURCE
#include "handover.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../ring/error.h"

static void stamp(struct sb_hello *h)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, SB_HELLO_MAGIC, sizeof(h->magic));
	h->version = SB_HELLO_VERSION;
	h->size = sizeof(*h);
	h->layout_hash = sb__layout_hash();
}

void sb__hello_accept(struct sb_hello *h, uint32_t slot, uint64_t data_size, int32_t pid,
		      uint64_t start_time)
{
	stamp(h);
	h->nfds = SB_HELLO_FDS;
	h->slot = slot;
	h->data_size = data_size;
	h->coord_pid = pid;
	h->coord_start_time = start_time;
}

void sb__hello_refuse(struct sb_hello *h, int status, const char *fmt, ...)
{
	va_list ap;

	stamp(h);
	h->status = status < 0 ? status : -EPERM;
	va_start(ap, fmt);
	vsnprintf(h->reason, sizeof(h->reason), fmt, ap);
	va_end(ap);
}

int sb__hello_send(int sock, const struct sb_hello *h, const int *fds, int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * SB_HELLO_FDS)];
	} ctl;
	struct iovec iov = { (void *)h, sizeof(*h) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds < 0 || nfds > SB_HELLO_FDS)
		return sb__fail(-EINVAL, "a hello carries 0 or %d descriptors, not %d",
				SB_HELLO_FDS, nfds);
	if (nfds > 0) {
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	if (n < 0)
		return sb__fail(-errno, "sending the hello: %s", strerror(errno));
	if ((size_t)n != sizeof(*h))
		return sb__fail(-EIO, "sent %zd of %zu hello bytes", n, sizeof(*h));
	return 0;
}

/* Keep printable ASCII only: the reason is shown to people. */
static void clean_reason(char *r, size_t cap)
{
	r[cap - 1] = '\0';
	for (char *p = r; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
}

int sb__hello_parse(const void *buf, size_t len, int nfds, struct sb_hello *out)
{
	struct sb_hello h;

	if (len < sizeof(h.magic) + 4 || memcmp(buf, SB_HELLO_MAGIC, sizeof(h.magic)) != 0)
		return sb__fail(-EPROTO,
				"the peer is not a snapbridge coordinator (%zu bytes "
				"without the SNAPHELO magic)",
				len);
	uint16_t version;
	memcpy(&version, (const char *)buf + 8, sizeof(version));
	if (version != SB_HELLO_VERSION)
		return sb__fail(-EPROTO,
				"the coordinator speaks handshake version %u; this library "
				"speaks %u: use matching snapbridge versions",
				version, SB_HELLO_VERSION);
	if (len != sizeof(h))
		return sb__fail(-EBADMSG, "hello is %zu bytes, expected %zu", len, sizeof(h));
	memcpy(&h, buf, sizeof(h));
	if (h.size != sizeof(h))
		return sb__fail(-EBADMSG, "hello claims %u bytes, expected %zu", h.size, sizeof(h));
	clean_reason(h.reason, sizeof(h.reason));
	if (h.status != 0) {
		if (h.status > 0 || h.status < -4095 || nfds != 0 || h.nfds != 0)
			return sb__fail(-EBADMSG, "malformed refusal (status %d, %d descriptors)",
					h.status, nfds);
		return sb__fail(h.status, "the coordinator refused this consumer: %s",
				h.reason[0] ? h.reason : "(no reason given)");
	}
	if (h.layout_hash != sb__layout_hash())
		return sb__fail(-EPROTO,
				"the coordinator's region layout is %016llx; this build reads "
				"%016llx: use matching snapbridge versions",
				(unsigned long long)h.layout_hash,
				(unsigned long long)sb__layout_hash());
	if (h.nfds != SB_HELLO_FDS || nfds != SB_HELLO_FDS)
		return sb__fail(-EBADMSG,
				"hello promises %u descriptors and carries %d; expected %d", h.nfds,
				nfds, SB_HELLO_FDS);
	*out = h;
	return 0;
}

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int sb__hello_recv(int sock, int timeout_ms, struct sb_hello *out, int fds[SB_HELLO_FDS])
{
	/* One spare byte and room for extra descriptors: oversize is detected, not cut. */
	char buf[sizeof(struct sb_hello) + 1];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * (SB_HELLO_FDS + 8))];
	} ctl;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	int got[SB_HELLO_FDS + 8];
	int ngot = 0, err;
	ssize_t n;

	for (int i = 0; i < SB_HELLO_FDS; i++)
		fds[i] = -1;
	for (;;) {
		int r = poll(&pfd, 1, timeout_ms);
		if (r > 0)
			break;
		if (r == 0)
			return sb__fail(-ETIMEDOUT, "no hello from the coordinator within %d ms",
					timeout_ms);
		if (errno != EINTR)
			return sb__fail(-errno, "waiting for the hello: %s", strerror(errno));
	}
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return sb__fail(-errno, "receiving the hello: %s", strerror(errno));
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
		    cm->cmsg_len < CMSG_LEN(0))
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && ngot < (int)(sizeof(got) / sizeof(got[0])); i++)
			memcpy(&got[ngot++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
	}
	if (n == 0) {
		err =
		    sb__fail(-ECONNRESET, "the coordinator closed the connection before its hello");
		goto fail;
	}
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		err = sb__fail(-EBADMSG, "hello too large (%zd bytes%s)", n,
			       msg.msg_flags & MSG_CTRUNC ? ", too many descriptors" : "");
		goto fail;
	}
	err = sb__hello_parse(buf, (size_t)n, ngot, out);
	if (err)
		goto fail;
	memcpy(fds, got, sizeof(int) * SB_HELLO_FDS);
	return 0;
fail:
	close_all(got, ngot);
	return err;
}
