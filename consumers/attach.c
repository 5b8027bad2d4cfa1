/*
 * consumers/attach.c - getting hold of a live region (socket, pid, plain
 * descriptors), the control slot that comes with it, waiting for news,
 * and telling whether the coordinator is alive, closed or dead.
 *
 * The consumer writes only its own control slot and the control page's
 * armed word (ring/control.h has the wake protocol, C1-C3 here). The data
 * region is mapped PROT_READ from an O_RDONLY descriptor.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../ring/atomics.h"
#include "../ring/clock.h"
#include "../ring/error.h"
#include "../ring/futex.h"
#include "../ring/hello.h"
#include "../shm/shm.h"
#include "consumer_internal.h"

#define HELLO_TIMEOUT_MS 5000
/* A sleeper looks for a dead coordinator at least this often. */
#define DEATH_SLICE_MS 50
/* Without a control page nobody wakes us: sleep in slices this long. */
#define UNARMED_SLICE_MS 10
#define SPIN_MIN_NS	 500
#define SPIN_START_NS	 4000
#define SPIN_MAX_NS	 50000
/* A heartbeat older than this many periods is stale. */
#define STALE_PERIODS 4

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

struct sb_consumer *sb__consumer_new(void)
{
	struct sb_consumer *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->ctl_slot = -1;
	c->conn_fd = c->pidfd = -1;
	c->spin_ns = SPIN_START_NS;
	return c;
}

static int check_flags(uint32_t flags)
{
	if (flags & ~(uint32_t)(SB_CONSUMER_ALL_VERSIONS | SB_CONSUMER_START_AT_END |
				SB_CONSUMER_VALIDATE_MSGPACK))
		return sb__fail(-EINVAL, "unknown consumer flags 0x%x", flags);
	return 0;
}

/* Check, map read-only and validate the data memfd. */
static int map_data(struct sb_consumer *c, int fd, uint32_t flags)
{
	uint64_t size;
	const void *map;
	int err = sb__shm_check_fd(fd, &size);

	if (err)
		return err;
	if (size < sizeof(struct sb_header))
		return sb__fail(-EBADMSG, "region is %llu bytes, smaller than its header",
				(unsigned long long)size);
	err = sb__shm_map_ro(fd, size, &map);
	if (err)
		return err;
	c->base = map;
	c->size = size;
	c->mapped = true;
	return sb__consumer_attach(c, flags);
}

/* Map the control page; claim a slot ourselves unless the coordinator gave us one. */
static int map_ctl(struct sb_consumer *c, int fd, int32_t given_slot)
{
	void *map;
	int err = sb__shm_map_ctl(fd, SB_CTL_SIZE, &map);

	if (err)
		return err;
	c->ctl = map;
	err = sb__ctl_validate(c->ctl);
	if (err)
		return err;
	if (given_slot >= 0) {
		c->ctl_slot = given_slot;
		return 0;
	}
	int32_t me = getpid();
	int slot = sb__ctl_claim(c->ctl, me, sb__proc_start_time(me), sb__mono_ns());
	if (slot < 0)
		return slot;
	c->ctl_slot = slot;
	c->ctl_claimer = me;
	return 0;
}

/*
 * A pidfd for the coordinator, if pid is it: the start time must match the
 * region's, or the pid was reused (or lives in another pid namespace).
 */
static void watch_pid(struct sb_consumer *c, pid_t pid)
{
	if (pid <= 0)
		return;
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return;
	uint64_t start = sb__proc_start_time(pid);
	if (start == 0 || start != c->hdr.coord_start_time) {
		close(fd);
		return;
	}
	c->pidfd = fd;
}

int sb_consumer_open_fds(int data_fd, int ctl_fd, uint32_t flags, struct sb_consumer **out)
{
	int err;

	if (!out)
		return sb__fail(-EINVAL, "sb_consumer_open_fds: out is NULL");
	*out = NULL;
	err = check_flags(flags);
	if (err)
		return err;
	struct sb_consumer *c = sb__consumer_new();
	if (!c)
		return sb__fail(-ENOMEM, "out of memory for a consumer");
	err = map_data(c, data_fd, flags);
	if (!err && ctl_fd >= 0)
		err = map_ctl(c, ctl_fd, -1);
	if (err) {
		sb_consumer_close(c);
		return err;
	}
	watch_pid(c, c->hdr.coord_pid);
	*out = c;
	return 0;
}

int sb_consumer_open_fd(int fd, uint32_t flags, struct sb_consumer **out)
{
	return sb_consumer_open_fds(fd, -1, flags, out);
}

/*
 * Connect without ever blocking past deadline_ms: a coordinator whose
 * accept backlog is full makes a blocking connect() wait indefinitely.
 */
static int connect_socket(const char *name, int deadline_ms, int *fd_out)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len = strlen(name);
	bool abstract = name[0] == '@';
	uint64_t give_up = sb__mono_ns() + (uint64_t)deadline_ms * 1000000ull;

	if (len >= sizeof(addr.sun_path) || (abstract && len < 2) || len == 0)
		return sb__fail(-ENAMETOOLONG, "socket name \"%s\" is not 1..%zu bytes", name,
				sizeof(addr.sun_path) - 1);
	memcpy(addr.sun_path, name, len);
	if (abstract)
		addr.sun_path[0] = '\0';
	socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + !abstract);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return sb__fail(-errno, "socket(AF_UNIX): %s", strerror(errno));
	for (;;) {
		if (connect(fd, (struct sockaddr *)&addr, alen) == 0)
			break;
		int e = errno;
		if ((e == EAGAIN || e == EINTR) && sb__mono_ns() < give_up) {
			usleep(e == EAGAIN ? 10000 : 0); /* the backlog is full: try again */
			continue;
		}
		close(fd);
		if (e == ENOENT || e == ECONNREFUSED)
			return sb__fail(-e, "no coordinator serves %s (%s); is it running?", name,
					strerror(e));
		if (e == EAGAIN)
			return sb__fail(-ETIMEDOUT,
					"the coordinator at %s accepts no connection "
					"(its backlog stayed full for %d ms)",
					name, deadline_ms);
		return sb__fail(-e, "connecting to %s: %s", name, strerror(e));
	}
	*fd_out = fd;
	return 0;
}

int sb_consumer_connect(const char *socket_name, uint32_t flags, struct sb_consumer **out)
{
	int fds[SB_HELLO_FDS] = { -1, -1 };
	struct sb_hello hello;
	struct ucred cred = { 0 };
	socklen_t clen = sizeof(cred);
	int err, sock = -1;

	if (!out || !socket_name)
		return sb__fail(-EINVAL, "sb_consumer_connect: NULL argument");
	*out = NULL;
	err = check_flags(flags);
	if (err)
		return err;
	err = connect_socket(socket_name, HELLO_TIMEOUT_MS, &sock);
	if (err)
		return err;
	err = sb__hello_recv(sock, HELLO_TIMEOUT_MS, &hello, fds);
	if (err) {
		close(sock);
		return err;
	}
	struct sb_consumer *c = sb__consumer_new();
	if (!c) {
		err = sb__fail(-ENOMEM, "out of memory for a consumer");
		goto fail;
	}
	c->conn_fd = sock;
	sock = -1;
	if (hello.ctl_slot >= SB_CTL_SLOTS) {
		err = sb__fail(-EBADMSG, "hello gives control slot %u of %u", hello.ctl_slot,
			       SB_CTL_SLOTS);
		goto fail;
	}
	err = map_data(c, fds[SB_HELLO_FD_DATA], flags);
	if (!err && c->size != hello.data_size)
		err = sb__fail(-EBADMSG, "data memfd is %zu bytes; the hello says %llu", c->size,
			       (unsigned long long)hello.data_size);
	if (!err)
		err = map_ctl(c, fds[SB_HELLO_FD_CTL], (int32_t)hello.ctl_slot);
	if (err)
		goto fail;
	/* The socket's peer, in our pid namespace: a pidfd on it too. */
	if (getsockopt(c->conn_fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
		watch_pid(c, cred.pid);
	close(fds[SB_HELLO_FD_DATA]);
	close(fds[SB_HELLO_FD_CTL]);
	*out = c;
	return 0;
fail:
	for (int i = 0; i < SB_HELLO_FDS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (sock >= 0)
		close(sock);
	if (c) {
		char why[400];

		snprintf(why, sizeof(why), "%s", sb_last_error());
		sb_consumer_close(c);
		sb__fail(err, "%s", why);
	}
	return err;
}

/* ---- attach by pid ------------------------------------------------------- */

/*
 * Find the target's memfd named "snapbridge-<what>": its fd number there.
 * -ENOENT when none, -ENOTUNIQ when several.
 */
static int find_memfd(pid_t pid, const char *what, int *target_fd)
{
	char dir[64], link[384], want[64], target[PATH_MAX];
	int found = -1, count = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	snprintf(want, sizeof(want), "/memfd:snapbridge-%s (deleted)", what);
	DIR *d = opendir(dir);
	if (!d)
		return sb__fail(errno == ENOENT ? -ESRCH : -EPERM,
				"cannot list the descriptors of pid %d (%s): %s", (int)pid, dir,
				errno == ENOENT ? "no such process"
						: "attaching by pid needs ptrace access to it");
	for (struct dirent *e; (e = readdir(d));) {
		char *end;
		long n = strtol(e->d_name, &end, 10);
		if (*end || n < 0 || n > INT_MAX)
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
		ssize_t len = readlink(link, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = '\0';
		if (strcmp(target, want) == 0) {
			found = (int)n;
			count++;
		}
	}
	closedir(d);
	if (count == 0)
		return sb__fail(-ENOENT, "pid %d has no snapbridge %s memfd: is it a coordinator?",
				(int)pid, what);
	if (count > 1)
		return sb__fail(
		    -ENOTUNIQ,
		    "pid %d has %d snapbridge regions; connect to the socket of the one "
		    "you want",
		    (int)pid, count);
	*target_fd = found;
	return 0;
}

static int grab_fd(int pidfd, pid_t pid, int target_fd, int *out)
{
	int fd = (int)syscall(SYS_pidfd_getfd, pidfd, target_fd, 0);

	if (fd >= 0) {
		*out = fd;
		return 0;
	}
	if (errno == ENOSYS)
		return sb__fail(-ENOSYS, "this kernel has no pidfd_getfd (Linux 5.6+ needed); "
					 "connect to the coordinator's socket instead");
	if (errno == EPERM)
		return sb__fail(-EPERM,
				"pidfd_getfd on pid %d: not permitted (needs ptrace access: the "
				"same uid and kernel.yama.ptrace_scope 0, or CAP_SYS_PTRACE)",
				(int)pid);
	return sb__fail(-errno, "pidfd_getfd on pid %d: %s", (int)pid, strerror(errno));
}

int sb_consumer_open_pid(pid_t pid, uint32_t flags, struct sb_consumer **out)
{
	int data_tfd, ctl_tfd, data_fd = -1, ro_fd = -1, ctl_fd = -1, err;
	struct sb_consumer *c = NULL;

	if (!out)
		return sb__fail(-EINVAL, "sb_consumer_open_pid: out is NULL");
	*out = NULL;
	err = check_flags(flags);
	if (err)
		return err;
	if (pid <= 0)
		return sb__fail(-EINVAL, "pid %d is not a process id", (int)pid);
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return sb__fail(errno == ESRCH ? -ESRCH : -errno, "pidfd_open(%d): %s", (int)pid,
				strerror(errno));
	err = find_memfd(pid, "data", &data_tfd);
	if (!err)
		err = find_memfd(pid, "ctl", &ctl_tfd);
	if (!err)
		err = grab_fd(pidfd, pid, data_tfd, &data_fd);
	if (!err)
		err = grab_fd(pidfd, pid, ctl_tfd, &ctl_fd);
	if (!err) {
		/*
		 * data_fd shares the coordinator's read-write open file; the seals
		 * already forbid writing through it, and we keep only a fresh
		 * O_RDONLY open of the same memfd.
		 */
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", data_fd);
		ro_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (ro_fd < 0)
			err = sb__fail(-errno, "reopening the data memfd read-only: %s",
				       strerror(errno));
	}
	if (!err) {
		c = sb__consumer_new();
		if (!c)
			err = sb__fail(-ENOMEM, "out of memory for a consumer");
	}
	if (!err)
		err = map_data(c, ro_fd, flags);
	if (!err)
		err = map_ctl(c, ctl_fd, -1);
	if (!err && sb__proc_start_time(pid) != c->hdr.coord_start_time)
		err = sb__fail(-ESRCH, "pid %d exited while we attached", (int)pid);
	if (data_fd >= 0)
		close(data_fd);
	if (ro_fd >= 0)
		close(ro_fd);
	if (ctl_fd >= 0)
		close(ctl_fd);
	if (err) {
		close(pidfd);
		sb_consumer_close(c);
		return err;
	}
	c->pidfd = pidfd;
	*out = c;
	return 0;
}

void sb_consumer_close(struct sb_consumer *c)
{
	if (!c)
		return;
	if (c->ctl) {
		/*
		 * A slot the coordinator gave us is freed by it when the socket
		 * closes; one we claimed is ours to free, but not a fork()ed child's.
		 */
		if (c->ctl_claimer && c->ctl_claimer == getpid())
			sb__ctl_release(c->ctl, (uint32_t)c->ctl_slot, c->ctl_claimer);
		munmap(c->ctl, SB_CTL_SIZE);
	}
	if (c->base) {
		if (c->mapped)
			munmap((void *)c->base, c->size);
		else
			free((void *)c->base);
	}
	int fds[] = { c->pidfd, c->conn_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	sb__buf_free(&c->buf);
	free(c);
}

/* ---- the control slot ------------------------------------------------------ */

static struct sb_ctl_slot *my_slot(struct sb_consumer *c)
{
	return c->ctl && c->ctl_slot >= 0 ? &c->ctl->slots[c->ctl_slot] : NULL;
}

void sb__consumer_touch(struct sb_consumer *c)
{
	struct sb_ctl_slot *s = my_slot(c);

	if (!s)
		return;
	sb_store_relaxed(&s->cursor, c->cursor);
	sb_store_relaxed(&s->heartbeat_ns, sb__mono_ns());
	sb_store_relaxed(&s->waiting, (uint32_t)SB_CTL_WAIT_NONE);
}

int sb_consumer_peers(struct sb_consumer *c, struct sb_consumer_info *out, size_t cap, size_t *n)
{
	if (!c || !n || (cap && !out))
		return sb__fail(-EINVAL, "sb_consumer_peers: NULL argument");
	if (!c->ctl)
		return sb__fail(-EOPNOTSUPP, "this consumer has no control page (an image, or "
					     "opened without one)");
	uint64_t stores = sb_load_acquire(&c->hot->store_seq); /* pairs with W3s */
	*n = sb__ctl_list(c->ctl, stores, sb__mono_ns(), out, cap);
	return 0;
}

/* ---- liveness ------------------------------------------------------------- */

const char *sb_coord_state_name(enum sb_coord_state state)
{
	switch (state) {
	case SB_COORD_ALIVE:
		return "alive";
	case SB_COORD_CLOSED:
		return "closed";
	case SB_COORD_DEAD:
		return "dead";
	}
	return "unknown";
}

/* Did the peer of a connection hang up? (Wake bytes make it readable too.) */
static bool hung_up(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* A pidfd is readable once its process has exited. */
static bool exited(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return poll(&p, 1, 0) > 0 && p.revents != 0;
}

/* Without a socket or pidfd: a stale beat and a pid that is not the coordinator. */
static bool looks_dead(struct sb_consumer *c)
{
	uint64_t beat = sb_load_relaxed(&((const struct sb_header *)c->base)->heartbeat_ns);
	uint32_t period =
	    sb_load_relaxed(&((const struct sb_header *)c->base)->heartbeat_period_ms);
	uint64_t now = sb__mono_ns();

	if (period && now >= beat && now - beat < (uint64_t)period * STALE_PERIODS * 1000000ull)
		return false;
	int32_t pid = c->hdr.coord_pid;
	return pid <= 0 || sb__proc_start_time(pid) != c->hdr.coord_start_time;
}

static enum sb_coord_state settle(struct sb_consumer *c, enum sb_coord_state st)
{
	c->coord_final = st;
	c->writer_gone = true; /* nobody will finish a record left half-written */
	return st;
}

static enum sb_coord_state coordinator_state(struct sb_consumer *c)
{
	const struct sb_header *shared = (const struct sb_header *)c->base;

	if (c->coord_final)
		return c->coord_final;
	/* Acquire: pairs with the release store of closed in sb_bridge_destroy. */
	if (sb_load_acquire(&shared->closed))
		return settle(c, SB_COORD_CLOSED);
	bool gone;
	/*
	 * Either signal suffices: the pidfd covers a coordinator whose forked
	 * children keep the connection open, the hang-up one whose pid we
	 * cannot see (another pid namespace).
	 */
	if (c->conn_fd >= 0 || c->pidfd >= 0)
		gone =
		    (c->conn_fd >= 0 && hung_up(c->conn_fd)) || (c->pidfd >= 0 && exited(c->pidfd));
	else
		gone = looks_dead(c);
	if (!gone)
		return SB_COORD_ALIVE;
	/* closed is stored before any hang-up: read it again to tell the two apart. */
	return settle(c, sb_load_acquire(&shared->closed) ? SB_COORD_CLOSED : SB_COORD_DEAD);
}

enum sb_coord_state sb__consumer_coord_state(struct sb_consumer *c)
{
	return coordinator_state(c);
}

int sb_consumer_coordinator(struct sb_consumer *c, enum sb_coord_state *out)
{
	if (!c || !out)
		return sb__fail(-EINVAL, "sb_consumer_coordinator: NULL argument");
	*out = coordinator_state(c);
	return 0;
}

/* ---- waiting ----------------------------------------------------------------- */

/* Has the writer published anything since the drains this consumer uses last started? */
static bool news(const struct sb_consumer *c, uint32_t gen)
{
	bool any = false;

	if (c->more || c->aux_more)
		return true;
	for (int ch = 0; ch < SB_CHAN_COUNT; ch++) {
		if (!c->used[ch])
			continue;
		any = true;
		if (gen != c->mark[ch])
			return true;
	}
	return !any; /* before any drain, everything is news */
}

/*
 * Is there anything left for the drains this consumer uses (all of them
 * before the first drain)? Exact, from the positions rather than wake_gen
 * (which the close bumps too); used to decide between READY and CLOSED /
 * DEAD.
 */
static bool unread(const struct sb_consumer *c)
{
	bool any = false;

	for (int ch = 0; ch < SB_CHAN_COUNT; ch++)
		any |= c->used[ch];
	for (int ch = 0; ch < SB_CHAN_COUNT; ch++)
		if ((!any || c->used[ch]) && sb__chan_unread(c, (enum sb_chan)ch))
			return true;
	return false;
}

/* READY when there is something to drain, else how the coordinator ended. */
static enum sb_wait_status final_status(struct sb_consumer *c, enum sb_coord_state st)
{
	if (unread(c))
		return SB_WAIT_READY;
	return st == SB_COORD_CLOSED ? SB_WAIT_CLOSED : SB_WAIT_DEAD;
}

static bool closed_flag(const struct sb_consumer *c)
{
	/* pairs with the release store of closed in sb_bridge_destroy */
	return sb_load_acquire(&((const struct sb_header *)c->base)->closed) != 0;
}

static const uint32_t *wake_word(const struct sb_consumer *c)
{
	return &c->hot->wake_gen;
}

/* Spin up to c->spin_ns for news; adapt the budget to whether spinning pays. */
static bool spin(struct sb_consumer *c)
{
	uint64_t start = sb__mono_ns();

	for (unsigned i = 1;; i++) {
		if (news(c, sb_load_acquire(wake_word(c)))) { /* pairs with N1 */
			if (c->spin_ns < SPIN_MAX_NS)
				c->spin_ns *= 2;
			return true;
		}
		cpu_relax();
		if ((i & 31) == 0 && sb__mono_ns() - start >= c->spin_ns)
			break;
	}
	if (c->spin_ns > SPIN_MIN_NS)
		c->spin_ns /= 2;
	return false;
}

/*
 * C1-C2: announce that we are about to wait, then look once more. Returns
 * true when there is news after all (do not sleep); *gen is the value to
 * sleep on otherwise.
 */
static bool arm(struct sb_consumer *c, uint32_t how, uint32_t *gen)
{
	struct sb_ctl_slot *s = my_slot(c);

	if (s) {
		sb_store_relaxed(&s->heartbeat_ns, sb__mono_ns());
		sb_store_relaxed(&s->waiting, how);
	}
	/* C1: pairs with N2. An exchange, to extend the release sequence N2 reads. */
	(void)sb_exchange_seqcst(&c->ctl->armed, 1);
	*gen = sb_load_seqcst(wake_word(c)); /* C2: pairs with N1 */
	return news(c, *gen);
}

static void disarm(struct sb_consumer *c)
{
	struct sb_ctl_slot *s = my_slot(c);

	if (s)
		sb_store_relaxed(&s->waiting, (uint32_t)SB_CTL_WAIT_NONE);
}

/*
 * The answer that needs no waiting, if there is one: READY for news (once
 * closed, the positions decide instead, as the close bumps wake_gen too),
 * CLOSED or DEAD once the coordinator is gone and everything is read.
 */
static bool settled(struct sb_consumer *c, uint32_t gen, enum sb_wait_status *status)
{
	if (news(c, gen) && !closed_flag(c)) {
		*status = SB_WAIT_READY;
		return true;
	}
	enum sb_coord_state st = coordinator_state(c);
	if (st == SB_COORD_ALIVE)
		return false;
	/* What was published before the close or the death comes first. */
	*status = final_status(c, st);
	return true;
}

static struct timespec ms_to_ts(uint64_t ms)
{
	return (struct timespec){ (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
}

int sb_consumer_wait(struct sb_consumer *c, int timeout_ms, enum sb_wait_status *status)
{
	if (!c || !status)
		return sb__fail(-EINVAL, "sb_consumer_wait: NULL argument");
	uint64_t deadline =
	    timeout_ms < 0 ? UINT64_MAX : sb__mono_ns() + (uint64_t)timeout_ms * 1000000ull;
	bool spun = false;

	for (;;) {
		uint32_t gen = sb_load_acquire(wake_word(c)); /* pairs with N1 */
		if (settled(c, gen, status))
			return 0;
		uint64_t now = sb__mono_ns();
		if (now >= deadline) {
			*status = SB_WAIT_TIMEOUT;
			return 0;
		}
		if (!spun && c->base && c->mapped) {
			spun = true;
			if (spin(c))
				continue;
		}
		uint64_t left_ms =
		    deadline == UINT64_MAX ? UINT64_MAX : (deadline - now + 999999) / 1000000;
		uint64_t slice = c->ctl ? DEATH_SLICE_MS : UNARMED_SLICE_MS;
		if (c->ctl && arm(c, SB_CTL_WAIT_FUTEX, &gen)) {
			disarm(c);
			continue;
		}
		struct timespec ts = ms_to_ts(left_ms < slice ? left_ms : slice);
		(void)sb__futex_wait(wake_word(c), gen, &ts); /* C3 */
		disarm(c);
	}
}

int sb_consumer_pollfd(struct sb_consumer *c, int *fd)
{
	if (!c || !fd)
		return sb__fail(-EINVAL, "sb_consumer_pollfd: NULL argument");
	if (c->conn_fd < 0)
		return sb__fail(-EOPNOTSUPP, "only a consumer attached with sb_consumer_connect() "
					     "has a pollable descriptor");
	*fd = c->conn_fd;
	return 0;
}

/* Take the wake messages already delivered; they were for earlier arms. */
static void drop_wakes(struct sb_consumer *c)
{
	char sink[16];

	for (int i = 0; i < 1024; i++)
		if (recv(c->conn_fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
			return;
}

int sb_consumer_arm(struct sb_consumer *c, enum sb_wait_status *status)
{
	uint32_t gen;

	if (!c || !status)
		return sb__fail(-EINVAL, "sb_consumer_arm: NULL argument");
	if (c->conn_fd < 0)
		return sb__fail(-EOPNOTSUPP, "only a consumer attached with sb_consumer_connect() "
					     "can be armed for polling");
	if (settled(c, sb_load_acquire(wake_word(c)), status)) /* pairs with N1 */
		return 0;
	drop_wakes(c);
	if (arm(c, SB_CTL_WAIT_POLL, &gen)) {
		disarm(c);
		*status = SB_WAIT_READY;
		return 0;
	}
	*status = SB_WAIT_ARMED;
	return 0;
}
