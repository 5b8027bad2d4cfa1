/*
 * consumers/connect.c - getting hold of a live region: over the
 * coordinator's socket (checking who serves it), from a socket the
 * coordinator handed over, by the coordinator's pid, or from a plain
 * data descriptor; and letting go of it.
 *
 * The data region is mapped PROT_READ from an O_RDONLY descriptor. The
 * only memory a consumer writes is its own control page (ring/control.h),
 * which the hello hands it with the data descriptor.
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../ring/atomics.h"
#include "../ring/clock.h"
#include "../ring/error.h"
#include "../shm/handover.h"
#include "../shm/shm.h"
#include "consumer_internal.h"

#define HELLO_TIMEOUT_MS 5000

struct sb_consumer *sb__consumer_new(void)
{
	struct sb_consumer *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->conn_fd = c->pidfd = -1;
	c->spin_ns = SB_SPIN_START_NS;
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

/* Map our control page read-write, check it, and say who we are there. */
static int map_page(struct sb_consumer *c, int fd)
{
	void *map;
	int err = sb__shm_map_ctl(fd, SB_CTL_SIZE, &map);

	if (err)
		return err;
	c->page = map;
	err = sb__ctl_validate(c->page);
	if (err)
		return err;
	sb_store_relaxed(&c->page->pid, (int32_t)getpid()); /* a hint for the listing */
	sb__consumer_touch(c);
	return 0;
}

/*
 * A pidfd for the coordinator, if pid is it: the start time must match the
 * region's, or the pid was reused (or lives in another pid namespace).
 */
static void watch_pid(struct sb_consumer *c, pid_t pid)
{
	if (pid <= 0 || c->pidfd >= 0)
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

/* What the process serving a socket must be. */
struct server_want {
	int64_t uid; /* -1: this process's effective uid, or root */
	pid_t pid;   /* > 0: exactly this process (attach by pid); the uid is then not asked */
	const struct stat *data; /* non-NULL: the hello must carry this same memfd */
};

/* Who serves sock: its SO_PEERCRED (the credentials it listened with). */
static int check_server(int sock, const char *what, const struct server_want *want, pid_t *pid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred))
		return sb__fail(-errno ? -errno : -EPROTO,
				"cannot read the credentials of the process serving %s: %s", what,
				strerror(errno));
	*pid = cred.pid;
	if (want->pid > 0) {
		if (cred.pid != want->pid)
			return sb__fail(
			    -EACCES, "%s is served by pid %d, not by pid %d whose region this is",
			    what, (int)cred.pid, (int)want->pid);
		return 0;
	}
	uid_t me = geteuid();
	if (want->uid >= 0 ? cred.uid == (uid_t)want->uid : cred.uid == me || cred.uid == 0)
		return 0;
	if (want->uid >= 0)
		return sb__fail(-EACCES,
				"%s is served by uid %u, not the expected uid %lld; refusing its "
				"region",
				what, cred.uid, (long long)want->uid);
	return sb__fail(-EACCES,
			"%s is served by uid %u, neither yours (%u) nor root; refusing its region "
			"(if that uid is the coordinator's, name it: expect_uid, or --expect-uid)",
			what, cred.uid, me);
}

/*
 * sock is connected to a checked server: take its hello and what it
 * carries. Takes sock in every case.
 */
static int adopt(int sock, uint32_t flags, const struct server_want *want, pid_t server_pid,
		 struct sb_consumer **out)
{
	int fds[SB_HELLO_FDS] = { -1, -1 };
	struct sb_hello hello;
	struct sb_consumer *c = NULL;
	int err = sb__hello_recv(sock, HELLO_TIMEOUT_MS, &hello, fds);

	if (err) {
		close(sock);
		return err;
	}
	c = sb__consumer_new();
	if (!c) {
		err = sb__fail(-ENOMEM, "out of memory for a consumer");
		close(sock);
		goto out;
	}
	c->conn_fd = sock;
	err = map_data(c, fds[SB_HELLO_FD_DATA], flags);
	if (!err && c->size != hello.data_size)
		err = sb__fail(-EBADMSG, "data memfd is %zu bytes; the hello says %llu", c->size,
			       (unsigned long long)hello.data_size);
	struct stat st;
	if (!err && want->data &&
	    (fstat(fds[SB_HELLO_FD_DATA], &st) != 0 || st.st_dev != want->data->st_dev ||
	     st.st_ino != want->data->st_ino))
		err = sb__fail(-ESRCH, "the socket hands over another region than pid %d's",
			       (int)want->pid);
	if (!err)
		err = map_page(c, fds[SB_HELLO_FD_CTL]);
	if (!err) {
		/* The socket's listener, in our pid namespace: a pidfd on it too. */
		watch_pid(c, server_pid);
		watch_pid(c, c->hdr.coord_pid);
	}
out:
	for (int i = 0; i < SB_HELLO_FDS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (err) {
		char why[400];

		snprintf(why, sizeof(why), "%s", sb_last_error());
		sb_consumer_close(c);
		return sb__fail(err, "%s", why);
	}
	*out = c;
	return 0;
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

static int connect_checked(const char *name, uint32_t flags, const struct server_want *want,
			   struct sb_consumer **out)
{
	int sock = -1;
	pid_t server;
	int err = connect_socket(name, HELLO_TIMEOUT_MS, &sock);

	if (!err)
		err = check_server(sock, name, want, &server);
	if (err) {
		if (sock >= 0)
			close(sock);
		return err;
	}
	return adopt(sock, flags, want, server, out);
}

void sb_connect_config_default(struct sb_connect_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->expect_uid = -1;
}

int sb_consumer_connect_with(const char *socket_name, const struct sb_connect_config *cfg,
			     struct sb_consumer **out)
{
	if (!out || !socket_name || !cfg)
		return sb__fail(-EINVAL, "sb_consumer_connect_with: NULL argument");
	*out = NULL;
	int err = check_flags(cfg->flags);
	if (err)
		return err;
	if (cfg->reserved != 0)
		return sb__fail(-EINVAL, "sb_connect_config.reserved must be 0");
	if (cfg->expect_uid < -1 || cfg->expect_uid > (int64_t)UINT32_MAX - 1)
		return sb__fail(-EINVAL, "expect_uid %lld is not a user id",
				(long long)cfg->expect_uid);
	struct server_want want = { .uid = cfg->expect_uid };
	return connect_checked(socket_name, cfg->flags, &want, out);
}

int sb_consumer_connect(const char *socket_name, uint32_t flags, struct sb_consumer **out)
{
	struct sb_connect_config cfg;

	sb_connect_config_default(&cfg);
	cfg.flags = flags;
	return sb_consumer_connect_with(socket_name, &cfg, out);
}

int sb_consumer_open_socket(int fd, uint32_t flags, struct sb_consumer **out)
{
	struct server_want want = { .uid = -1 };
	pid_t server;
	int err;

	if (!out) {
		if (fd >= 0)
			close(fd);
		return sb__fail(-EINVAL, "sb_consumer_open_socket: out is NULL");
	}
	*out = NULL;
	err = check_flags(flags);
	if (!err && fd < 0)
		err = sb__fail(-EBADF, "sb_consumer_open_socket: descriptor %d is not open", fd);
	if (!err && fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
		err = sb__fail(-errno, "descriptor %d is not a socket we can use: %s", fd,
			       strerror(errno));
	if (!err)
		err = check_server(fd, "the handed-over socket", &want, &server);
	if (err) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	return adopt(fd, flags, &want, server, out);
}

int sb_consumer_open_fd(int fd, uint32_t flags, struct sb_consumer **out)
{
	int err;

	if (!out)
		return sb__fail(-EINVAL, "sb_consumer_open_fd: out is NULL");
	*out = NULL;
	err = check_flags(flags);
	if (err)
		return err;
	struct sb_consumer *c = sb__consumer_new();
	if (!c)
		return sb__fail(-ENOMEM, "out of memory for a consumer");
	err = map_data(c, fd, flags);
	if (err) {
		sb_consumer_close(c);
		return err;
	}
	watch_pid(c, c->hdr.coord_pid);
	*out = c;
	return 0;
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

/*
 * The region's serve name, if it is one we could connect to: the header
 * copy is the coordinator's word, bounded and checked like any other.
 */
static bool serve_name(const struct sb_consumer *c, char *name, size_t cap)
{
	const char *n = c->hdr.serve_name;
	size_t len = strnlen(n, SB_SERVE_NAME_MAX);

	if (len == 0 || len >= cap || len >= SB_SERVE_NAME_MAX || (n[0] != '/' && n[0] != '@'))
		return false;
	memcpy(name, n, len);
	name[len] = '\0';
	return true;
}

int sb_consumer_open_pid(pid_t pid, uint32_t flags, struct sb_consumer **out)
{
	int data_tfd, data_fd = -1, ro_fd = -1, err;
	struct sb_consumer *c = NULL;
	struct stat st;

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
		err = grab_fd(pidfd, pid, data_tfd, &data_fd);
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
	if (!err && sb__proc_start_time(pid) != c->hdr.coord_start_time)
		err = sb__fail(-ESRCH, "pid %d exited while we attached", (int)pid);
	if (!err && fstat(ro_fd, &st) != 0)
		err = sb__fail(-errno, "fstat on the data memfd: %s", strerror(errno));
	if (data_fd >= 0)
		close(data_fd);
	if (ro_fd >= 0)
		close(ro_fd);
	if (err) {
		close(pidfd);
		sb_consumer_close(c);
		return err;
	}
	/*
	 * If it serves, connect there for a control page and wake-ups: its
	 * listener must be pid itself, handing over this very memfd. If not
	 * (or from another namespace) the consumer stays data-only and sleeps
	 * in short slices.
	 */
	char name[SB_SERVE_NAME_MAX];
	struct sb_consumer *live;
	struct server_want want = { .uid = -1, .pid = pid, .data = &st };
	if (serve_name(c, name, sizeof(name)) && connect_checked(name, flags, &want, &live) == 0) {
		sb_consumer_close(c);
		c = live;
	}
	if (c->pidfd < 0)
		c->pidfd = pidfd;
	else
		close(pidfd);
	*out = c;
	return 0;
}

void sb_consumer_close(struct sb_consumer *c)
{
	if (!c)
		return;
	if (c->page)
		munmap(c->page, SB_CTL_SIZE);
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
