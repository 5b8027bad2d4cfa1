/*
 * coordinator/serve.c - the serving thread: hands the region to consumers
 * that connect to a Unix socket, beats the heartbeat, and reclaims the
 * control slots of consumers that died.
 *
 * One thread per serving bridge, with every signal blocked, polling:
 *   - a stop eventfd (sb__serve_stop),
 *   - the kick eventfd: a store found a polling consumer armed; send one
 *     byte (MSG_DONTWAIT) on the connection of every slot that says POLL,
 *   - the listening SOCK_SEQPACKET socket: accept, check SO_PEERCRED,
 *     claim a control slot for the peer's pid, send the hello with the
 *     two descriptors (ring/hello.h),
 *   - one connection per attached consumer, kept open so that its
 *     hang-up tells us the consumer is gone (its slot is freed at once).
 * Every heartbeat period it stores CLOCK_MONOTONIC into the header and
 * frees slots claimed by pid-attached consumers whose process is gone.
 *
 * It never takes the bridge lock and never touches the log or the index,
 * so stores do not wait for it. Everything it reads from the control page
 * is a hint (ring/control.h); every value from a peer is checked; every
 * descriptor a peer shares with us is used only with MSG_DONTWAIT.
 *
 * Caveat: a coordinator that fork()s without exec() hands its children
 * the listening socket, the lock and the connections; consumers then see
 * no hang-up when it dies (they still have its pidfd).
 */
#define _GNU_SOURCE
#include "bridge_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../ring/clock.h"
#include "../ring/error.h"
#include "../ring/hello.h"

/* Linux's PID_MAX_LIMIT: an owner outside 1..this is garbage. */
#define SB_PID_MAX 4194304

struct conn {
	int fd; /* -1: unused */
	int32_t pid;
	uint32_t slot;
};

struct sb_server {
	struct sb_bridge *b;
	struct sb_serve_config cfg;
	struct sockaddr_un addr;
	socklen_t addrlen;
	bool abstract;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* absolute */
	char lock_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	int listen_fd;
	int lock_fd;
	int stop_fd;
	int kick_fd;
	uint64_t accept_paused_until; /* out of descriptors: stop accepting for a while */
	pthread_t thread;
	uid_t uid;
	struct conn conns[SB_CTL_SLOTS];
	bool slot_connected[SB_CTL_SLOTS]; /* owned by a live connection: HUP frees it */
	bool suspect[SB_CTL_SLOTS];	   /* start time mismatched at the last scan */
};

static void say(struct sb_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct sb_server *s, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (s->cfg.log)
		s->cfg.log(s->cfg.log_user, line);
	else
		fprintf(stderr, "snapbridge: %s\n", line);
}

void sb_serve_config_default(struct sb_serve_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->allowed_gid = -1;
	cfg->heartbeat_ms = SB_DEFAULT_HEARTBEAT_MS;
}

/* ---- the socket ---------------------------------------------------------- */

/*
 * Take PATH.lock for as long as we serve. flock() dies with its holder, so
 * a held lock means a live coordinator; the inode check catches a lock
 * file that its previous owner unlinked between our open and our flock.
 */
#define SB_LOCK_MARK "snapbridge coordinator lock\n"

/*
 * A lock file is empty when we just created it, or holds our mark when a
 * coordinator made it before. Anything else is somebody's file: refuse,
 * and never unlink it (lock_fd is dropped so server_free leaves it alone).
 */
static int claim_lock_file(struct sb_server *s, int fd, const struct stat *st)
{
	char buf[sizeof(SB_LOCK_MARK)];
	size_t mark = sizeof(SB_LOCK_MARK) - 1;

	if (S_ISREG(st->st_mode) && st->st_size == 0 &&
	    pwrite(fd, SB_LOCK_MARK, mark, 0) == (ssize_t)mark)
		return 0;
	if (S_ISREG(st->st_mode) && (size_t)st->st_size == mark &&
	    pread(fd, buf, mark, 0) == (ssize_t)mark && memcmp(buf, SB_LOCK_MARK, mark) == 0)
		return 0;
	close(fd);
	s->lock_fd = -1;
	return sb__fail(-EEXIST, "%s exists and is not a snapbridge lock file; refusing to use it",
			s->lock_path);
}

static int take_lock(struct sb_server *s)
{
	for (int attempt = 0; attempt < 8; attempt++) {
		struct stat held, named;
		int fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

		if (fd < 0)
			return sb__fail(-errno, "cannot open lock file %s: %s", s->lock_path,
					strerror(errno));
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			int e = errno;
			close(fd);
			if (e == EWOULDBLOCK)
				return sb__fail(-EADDRINUSE,
						"%s is served by a live coordinator (it holds %s); "
						"stop it or choose another socket",
						s->addr.sun_path, s->lock_path);
			return sb__fail(-e, "cannot lock %s: %s", s->lock_path, strerror(e));
		}
		if (fstat(fd, &held) == 0 && stat(s->lock_path, &named) == 0 &&
		    held.st_ino == named.st_ino && held.st_dev == named.st_dev) {
			s->lock_fd = fd;
			return claim_lock_file(s, fd, &held);
		}
		close(fd);
	}
	return sb__fail(-EAGAIN, "lock file %s keeps being replaced; try again", s->lock_path);
}

/* With the lock held: a socket left at the path is a dead coordinator's. */
static int clear_stale(struct sb_server *s)
{
	const char *path = s->addr.sun_path;
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT
			   ? 0
			   : sb__fail(-errno, "cannot stat %s: %s", path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return sb__fail(-EEXIST, "%s exists and is not a socket; refusing to replace it",
				path);
	/*
	 * Belt and braces: a server without our lock (another tool) may live
	 * there. Only "connection refused" proves nobody listens; anything else
	 * (accepted, a full backlog, another socket type, no permission) leaves
	 * the file alone. Non-blocking, so a full backlog cannot hang us.
	 */
	int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (probe < 0)
		return sb__fail(-errno, "socket(AF_UNIX): %s", strerror(errno));
	int rc = connect(probe, (struct sockaddr *)&s->addr, s->addrlen);
	int e = errno;
	close(probe);
	if (rc == 0 || e != ECONNREFUSED)
		return sb__fail(-EADDRINUSE,
				"%s is in use by another process (%s); not replacing it", path,
				rc == 0 ? "it accepts connections" : strerror(e));
	if (unlink(path) != 0 && errno != ENOENT)
		return sb__fail(-errno, "cannot remove stale socket %s: %s", path, strerror(errno));
	say(s, "replaced the stale socket %s left by a coordinator that is gone", path);
	return 0;
}

static int open_listener(struct sb_server *s, const char *given)
{
	const char *name = given;
	int err;

	size_t given_len = strlen(given);
	if (given_len == 0 || given[given_len - 1] == '/')
		return sb__fail(-EINVAL, "socket path \"%s\" names no file", given);
	/* Keep an absolute path: a later chdir() must not make us unlink another file. */
	if (given[0] != '@' && given[0] != '/') {
		char cwd[sizeof(s->path)];
		if (!getcwd(cwd, sizeof(cwd)) ||
		    snprintf(s->path, sizeof(s->path), "%s/%s", cwd, given) >= (int)sizeof(s->path))
			return sb__fail(-ENAMETOOLONG,
					"socket path %s is too long once made absolute (limit %zu "
					"bytes)",
					given, sizeof(s->path) - 1);
		name = s->path;
	}
	size_t len = strlen(name);

	s->addr.sun_family = AF_UNIX;
	s->abstract = name[0] == '@';
	if (len < 2 && s->abstract)
		return sb__fail(-EINVAL, "abstract socket name \"%s\" is empty", name);
	if (len >= sizeof(s->addr.sun_path))
		return sb__fail(-ENAMETOOLONG, "socket name %s is %zu bytes; the limit is %zu",
				name, len, sizeof(s->addr.sun_path) - 1);
	memcpy(s->addr.sun_path, name, len);
	if (s->abstract)
		s->addr.sun_path[0] = '\0';
	s->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + !s->abstract);

	if (!s->abstract) {
		snprintf(s->lock_path, sizeof(s->lock_path), "%s.lock", name);
		err = take_lock(s);
		if (!err)
			err = clear_stale(s);
		if (err)
			return err;
	}
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return sb__fail(-errno, "socket(AF_UNIX): %s", strerror(errno));
	mode_t mode = s->cfg.allowed_gid >= 0 ? 0660 : 0600;
	/* Linux gives the socket file the socket inode's mode (less umask) at bind. */
	if (!s->abstract && fchmod(fd, mode) != 0) {
		err = sb__fail(-errno, "fchmod on the socket: %s", strerror(errno));
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&s->addr, s->addrlen) != 0) {
		err = errno == EADDRINUSE
			  ? sb__fail(-EADDRINUSE, "%s%s is served by a live coordinator",
				     s->abstract ? "abstract socket " : "", name)
			  : sb__fail(-errno, "bind %s: %s", name, strerror(errno));
		goto fail;
	}
	if (!s->abstract) {
		if (s->cfg.allowed_gid >= 0 &&
		    chown(name, (uid_t)-1, (gid_t)s->cfg.allowed_gid) != 0) {
			err = sb__fail(-errno, "cannot give %s to group %lld: %s", name,
				       (long long)s->cfg.allowed_gid, strerror(errno));
			unlink(name);
			goto fail;
		}
		/* Undo a umask that narrowed the group bits; never wider than mode. */
		if (chmod(name, mode) != 0) {
			err = sb__fail(-errno, "chmod %s: %s", name, strerror(errno));
			unlink(name);
			goto fail;
		}
	}
	if (listen(fd, 64) != 0) {
		err = sb__fail(-errno, "listen on %s: %s", name, strerror(errno));
		if (!s->abstract)
			unlink(name);
		goto fail;
	}
	s->listen_fd = fd;
	return 0;
fail:
	close(fd);
	return err;
}

/* ---- peers ----------------------------------------------------------------- */

static bool in_group(int fd, gid_t gid, gid_t primary)
{
	socklen_t len = 64 * sizeof(gid_t);
	gid_t *groups = NULL;
	bool found = primary == gid;

	/* SO_PEERGROUPS answers ERANGE with the size it needs. */
	for (int attempt = 0; !found && attempt < 2; attempt++) {
		gid_t *g = realloc(groups, len);
		if (!g)
			break;
		groups = g;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
			for (socklen_t i = 0; i < len / sizeof(gid_t); i++)
				found = found || groups[i] == gid;
			break;
		}
		if (errno != ERANGE || len > (1u << 20))
			break;
	}
	free(groups);
	return found;
}

static void refuse(int fd, int status, const char *why)
{
	struct sb_hello h;

	sb__hello_refuse(&h, status, "%s", why);
	(void)sb__hello_send(fd, &h, NULL, 0);
	close(fd);
}

static void admit(struct sb_server *s, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char why[160];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred)) {
		say(s, "refused a peer: SO_PEERCRED failed: %s", strerror(errno));
		refuse(fd, -EACCES, "the coordinator could not read your credentials");
		return;
	}
	bool same_uid = cred.uid == s->uid;
	bool group_ok =
	    s->cfg.allowed_gid >= 0 && in_group(fd, (gid_t)s->cfg.allowed_gid, cred.gid);
	if (!same_uid && !group_ok) {
		if (s->cfg.allowed_gid >= 0)
			snprintf(why, sizeof(why),
				 "uid %u is not the coordinator's uid %u and is "
				 "not in group %lld",
				 cred.uid, s->uid, (long long)s->cfg.allowed_gid);
		else
			snprintf(why, sizeof(why), "uid %u is not the coordinator's uid %u",
				 cred.uid, s->uid);
		say(s, "refused pid %d: %s", cred.pid, why);
		refuse(fd, -EACCES, why);
		return;
	}
	int slot = sb__ctl_claim(s->b->ctl, cred.pid, sb__proc_start_time(cred.pid), sb__mono_ns());
	if (slot < 0) {
		say(s, "refused pid %d: %s", cred.pid, sb_last_error());
		refuse(fd, slot, sb_last_error());
		return;
	}
	int fds[SB_HELLO_FDS] = { -1, -1 };
	struct sb_hello h;
	int err = sb__shm_ro_fd(&s->b->data, &fds[SB_HELLO_FD_DATA]);
	if (!err) {
		fds[SB_HELLO_FD_CTL] = s->b->ctl_shm.fd;
		sb__hello_accept(&h, (uint32_t)slot, s->b->data.size, s->b->hdr->coord_pid,
				 s->b->hdr->coord_start_time);
		err = sb__hello_send(fd, &h, fds, SB_HELLO_FDS);
	}
	if (fds[SB_HELLO_FD_DATA] >= 0)
		close(fds[SB_HELLO_FD_DATA]);
	if (err) {
		say(s, "could not hand over to pid %d: %s", cred.pid, sb_last_error());
		sb__ctl_release(s->b->ctl, (uint32_t)slot, cred.pid);
		close(fd);
		return;
	}
	struct conn *c = &s->conns[slot];
	/*
	 * The claim found the slot free, yet a connection may still hold it: its
	 * consumer zeroed its own owner word. That connection loses the slot.
	 */
	if (c->fd >= 0) {
		say(s, "pid %d gave up control slot %d by hand; closing its connection", c->pid,
		    slot);
		close(c->fd);
	}
	c->fd = fd;
	c->pid = cred.pid;
	c->slot = (uint32_t)slot;
	s->slot_connected[slot] = true;
	s->suspect[slot] = false;
}

static void accept_all(struct sb_server *s)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			admit(s, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno != EAGAIN) {
			/* EMFILE and friends: the backlog waits; do not spin on it. */
			say(s, "accept on the consumer socket: %s; pausing for a second",
			    strerror(errno));
			s->accept_paused_until = sb__mono_ns() + 1000000000ull;
		}
		return;
	}
}

/* A store found a polling consumer armed: one byte to each slot that polls. */
static void fan_out(struct sb_server *s)
{
	uint64_t kicks;
	char wake = 'w';

	/*
	 * The storing thread read waiting == POLL after taking the arm and then
	 * wrote the eventfd; our read of it orders our loads of waiting after
	 * that (the eventfd's own lock is the pair), so we see what it saw.
	 */
	(void)!read(s->kick_fd, &kicks, sizeof(kicks));
	for (uint32_t i = 0; i < SB_CTL_SLOTS; i++) {
		struct conn *c = &s->conns[i];
		if (c->fd >= 0 && sb_load_relaxed(&s->b->ctl->slots[i].waiting) == SB_CTL_WAIT_POLL)
			(void)send(c->fd, &wake, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
}

static void hang_up(struct sb_server *s, struct conn *c)
{
	sb__ctl_release(s->b->ctl, c->slot, c->pid);
	s->slot_connected[c->slot] = false;
	close(c->fd);
	c->fd = -1;
}

/* A consumer has nothing to say after the hello: drop what it sends, notice EOF. */
static void service(struct sb_server *s, struct conn *c, short revents)
{
	char sink[256];

	if (revents & POLLIN) {
		ssize_t n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
			return;
	} else if (!(revents & (POLLHUP | POLLERR | POLLNVAL))) {
		return;
	}
	hang_up(s, c);
}

/* Free slots whose owner (a pid-attached consumer) is gone or was reused. */
static void reclaim(struct sb_server *s)
{
	struct sb_ctl *ctl = s->b->ctl;

	for (uint32_t i = 0; i < SB_CTL_SLOTS; i++) {
		int32_t owner = sb_load_relaxed(&ctl->slots[i].owner);
		bool gone;

		if (owner == 0 || s->slot_connected[i]) {
			s->suspect[i] = false;
			continue;
		}
		if (owner < 0 || owner > SB_PID_MAX) {
			gone = true;
		} else {
			uint64_t start = sb__proc_start_time(owner);
			/*
			 * A claimer writes its start time just after its CAS, so one
			 * mismatch may be a claim in flight: act on the second.
			 */
			bool mismatch = start != sb_load_relaxed(&ctl->slots[i].start_time);
			gone = start == 0 || (mismatch && s->suspect[i]);
			s->suspect[i] = mismatch && !gone;
		}
		if (gone && sb__ctl_release(ctl, i, owner)) {
			s->suspect[i] = false;
			say(s, "reclaimed consumer slot %u of pid %d, which is gone", i, owner);
		}
	}
}

static void beat(struct sb_server *s)
{
	/* Relaxed: the beat orders nothing, readers compare it with their clock. */
	sb_store_relaxed(&s->b->hdr->heartbeat_ns, sb__mono_ns());
}

static void *serve_main(void *arg)
{
	struct sb_server *s = arg;
	struct pollfd pfd[3 + SB_CTL_SLOTS];
	struct conn *owner[3 + SB_CTL_SLOTS];
	uint64_t period = (uint64_t)s->cfg.heartbeat_ms * 1000000ull;
	uint64_t next_beat = sb__mono_ns() + period;

	for (;;) {
		nfds_t n = 0;

		uint64_t now = sb__mono_ns();
		bool accepting = now >= s->accept_paused_until;

		pfd[n++] = (struct pollfd){ .fd = s->stop_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = s->kick_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = accepting ? s->listen_fd : -1, .events = POLLIN };
		for (uint32_t i = 0; i < SB_CTL_SLOTS; i++) {
			if (s->conns[i].fd < 0)
				continue;
			owner[n] = &s->conns[i];
			pfd[n++] = (struct pollfd){ .fd = s->conns[i].fd, .events = POLLIN };
		}
		int timeout = now >= next_beat ? 0 : (int)((next_beat - now + 999999) / 1000000);
		int r = poll(pfd, n, timeout);
		if (r < 0 && errno != EINTR) {
			say(s, "serving thread: poll: %s", strerror(errno));
			usleep(10000);
			continue;
		}
		if (pfd[0].revents)
			break;
		now = sb__mono_ns();
		if (now >= next_beat) {
			beat(s);
			reclaim(s);
			next_beat = now + period;
		}
		if (r <= 0)
			continue;
		if (pfd[1].revents)
			fan_out(s);
		if (pfd[2].revents)
			accept_all(s);
		for (nfds_t i = 3; i < n; i++)
			if (pfd[i].revents && owner[i]->fd == pfd[i].fd)
				service(s, owner[i], pfd[i].revents);
	}
	return NULL;
}

static void server_free(struct sb_server *s)
{
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->kick_fd >= 0)
		close(s->kick_fd);
	if (s->lock_fd >= 0) {
		/* Still holding the lock, so no other coordinator is between these two. */
		unlink(s->lock_path);
		close(s->lock_fd);
	}
	free(s);
}

int sb_bridge_serve(struct sb_bridge *b, const struct sb_serve_config *cfg)
{
	sigset_t all, old;
	int err;

	if (!b || !cfg || !cfg->socket)
		return sb__fail(-EINVAL, "sb_bridge_serve: bridge, config or socket is NULL");
	if (b->server)
		return sb__fail(-EALREADY, "this bridge already serves consumers");
	if (cfg->heartbeat_ms < 10 || cfg->heartbeat_ms > 60000)
		return sb__fail(-EINVAL, "heartbeat_ms is %u: it must be 10..60000",
				cfg->heartbeat_ms);
	if (cfg->reserved != 0)
		return sb__fail(-EINVAL, "sb_serve_config.reserved must be 0");
	if (cfg->allowed_gid < -1 || cfg->allowed_gid > (int64_t)UINT32_MAX - 1)
		return sb__fail(-EINVAL, "allowed_gid %lld is not a group id",
				(long long)cfg->allowed_gid);

	struct sb_server *s = calloc(1, sizeof(*s));
	if (!s)
		return sb__fail(-ENOMEM, "out of memory for the serving thread");
	s->b = b;
	s->cfg = *cfg;
	s->cfg.socket = NULL; /* not kept: the caller's string may go away */
	s->listen_fd = s->lock_fd = s->kick_fd = -1;
	s->uid = geteuid();
	for (uint32_t i = 0; i < SB_CTL_SLOTS; i++)
		s->conns[i].fd = -1;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_fd < 0 || s->kick_fd < 0) {
		err = sb__fail(-errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	err = open_listener(s, cfg->socket);
	if (err)
		goto fail;

	sb_store_relaxed(&b->hdr->heartbeat_period_ms, cfg->heartbeat_ms);
	beat(s);
	/*
	 * Before the thread can admit anyone: a consumer's arm is only visible
	 * after its hello, and the hello after this store, so a writer that
	 * takes that arm (N2, an acquire) also reads this kick_fd.
	 */
	sb_store_release(&b->kick_fd, s->kick_fd);
	/* The thread takes no signal: SIGINT and friends stay the application's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&s->thread, NULL, serve_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		sb_store_relaxed(&b->kick_fd, -1);
		sb__fail(err, "cannot start the serving thread: %s", strerror(-err));
		if (!s->abstract)
			unlink(s->addr.sun_path);
		goto fail;
	}
	b->server = s;
	return 0;
fail:
	server_free(s);
	return err;
}

void sb__serve_stop(struct sb_bridge *b)
{
	struct sb_server *s = b->server;
	static const uint64_t one = 1;

	if (!s)
		return;
	sb_store_relaxed(&b->kick_fd, -1);
	(void)!write(s->stop_fd, &one, sizeof(one));
	pthread_join(s->thread, NULL);
	for (uint32_t i = 0; i < SB_CTL_SLOTS; i++)
		if (s->conns[i].fd >= 0)
			hang_up(s, &s->conns[i]);
	if (!s->abstract)
		unlink(s->addr.sun_path);
	server_free(s);
	b->server = NULL;
}
