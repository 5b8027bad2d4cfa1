/*
 * coordinator/serve.c - the serving thread: hands the region to consumers
 * that connect to a Unix socket, takes their arm messages, beats the
 * heartbeat.
 *
 * One thread per serving bridge, with every signal blocked, polling:
 *   - a stop eventfd, also poked when a socketpair hand-over entered the
 *     table (sb_bridge_consumer_socket),
 *   - the listening SOCK_SEQPACKET socket (absent when serving only
 *     hand-overs): at most SB_ACCEPTS_PER_WAKE accepts per wake-up; each
 *     peer's SO_PEERCRED is checked, then it gets a control page of its
 *     own and the hello (coordinator/peers.c),
 *   - one connection per attached consumer: at most SB_ARM_MSGS arm
 *     messages per wake-up each; a message that is not an arm, or a
 *     hang-up, drops that consumer alone.
 * After each wake-up it marks the arms received (ring/wake.h, M1-M4; at
 * most one batch per SB_ARM_BATCH_NS). Every heartbeat period it stores
 * CLOCK_MONOTONIC into the header, rings armed consumers that have news
 * (the safety net), and republishes the consumer list. Work per wake-up
 * is bounded, so the beat is at most one period late under any flood;
 * refusals and hang-ups are logged at most SB_LOG_PER_S lines a second,
 * with a count of those left out.
 *
 * A second thread, the waker (coordinator/peers.c), rings armed
 * consumers when a publication kicks it. Neither takes the bridge lock;
 * every descriptor a peer shares with us is used with MSG_DONTWAIT.
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
#include "../ring/liveness.h"
#include "../shm/handover.h"
#include "peers.h"

/* Connections accepted per wake-up of the serving thread. */
#define SB_ACCEPTS_PER_WAKE 8
/* Lines a second about peers (refusals, hang-ups); the rest are counted. */
#define SB_LOG_PER_S 5

struct sb_server {
	struct sb_bridge *b;
	struct sb_serve_config cfg;
	struct sockaddr_un addr;
	socklen_t addrlen;
	bool abstract;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* absolute */
	char lock_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	int listen_fd; /* -1: hand-overs only */
	int lock_fd;
	int stop_fd; /* eventfd: stop, or look at the table again */
	uint32_t stopping;
	uint64_t accept_paused_until; /* out of descriptors: stop accepting for a while */
	pthread_t thread;
	uid_t uid;
	struct sb_peer_table peers;
	bool peers_up;
	/* Lines about peers in the current one-second window, and those left out. */
	uint64_t log_window_ns;
	unsigned log_lines;
	uint64_t log_dropped;
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

/* Report the lines left out of the window that ended. */
static void log_window(struct sb_server *s, uint64_t now)
{
	if (now - s->log_window_ns < 1000000000ull)
		return;
	if (s->log_dropped)
		say(s, "... and %llu more refusals or hang-ups in that second, not logged",
		    (unsigned long long)s->log_dropped);
	s->log_window_ns = now;
	s->log_lines = 0;
	s->log_dropped = 0;
}

/* A line about a peer: a flood of peers must not become a flood of lines. */
static void say_peer(struct sb_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say_peer(struct sb_server *s, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	log_window(s, sb__mono_ns());
	if (s->log_lines >= SB_LOG_PER_S) {
		s->log_dropped++;
		return;
	}
	s->log_lines++;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	say(s, "%s", line);
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

/* Check a peer and hand it the region; true when it entered the table. */
static bool admit(struct sb_server *s, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char why[160];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred)) {
		say_peer(s, "refused a peer: SO_PEERCRED failed: %s", strerror(errno));
		refuse(fd, -EACCES, "the coordinator could not read your credentials");
		return false;
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
		say_peer(s, "refused pid %d: %s", cred.pid, why);
		refuse(fd, -EACCES, why);
		return false;
	}
	int err = sb__peers_admit(&s->peers, fd, cred.pid, NULL);
	if (err) {
		snprintf(why, sizeof(why), "%s", sb_last_error());
		say_peer(s, "refused pid %d: %s", cred.pid, why);
		refuse(fd, err, why);
	}
	return err == 0;
}

/* Accept at most SB_ACCEPTS_PER_WAKE peers; true when one entered the table. */
static bool accept_some(struct sb_server *s)
{
	bool added = false;

	for (int n = 0; n < SB_ACCEPTS_PER_WAKE;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			added |= admit(s, fd);
			n++;
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno != EAGAIN) {
			/* EMFILE and friends: the backlog waits; do not spin on it. */
			say_peer(s, "accept on the consumer socket: %s; pausing for a second",
				 strerror(errno));
			s->accept_paused_until = sb__mono_ns() + 1000000000ull;
		}
		break;
	}
	return added;
}

/*
 * Take what consumer i sent: up to SB_ARM_MSGS arms (the latest is kept
 * for the next batch). Anything else, or a hang-up, drops it: true then.
 */
static bool service(struct sb_server *s, uint32_t i, int fd, short revents)
{
	struct sb_peer *p = &s->peers.peer[i];
	char buf[sizeof(struct sb_arm) + 1]; /* one byte more: a longer message shows */
	const char *why = NULL;

	for (int m = 0; m < SB_ARM_MSGS && !why; m++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return false;
		if (n <= 0) {
			why = ""; /* it hung up */
			break;
		}
		struct sb_arm a;
		if (sb__arm_parse(buf, (size_t)n, &a) != 0)
			why = sb_last_error();
		else {
			p->next = a;
			p->has_next = true;
		}
	}
	if (!why && !(revents & (POLLHUP | POLLERR | POLLNVAL)))
		return false;
	if (why && *why)
		say_peer(s, "hung up on consumer %u (pid %d): it sent %s", i, p->pid, why);
	sb__peers_drop(&s->peers, i);
	return true;
}

static void beat(struct sb_server *s)
{
	/* Relaxed: the beat orders nothing, readers compare it with their clock. */
	sb__beat(s->b->hdr, sb__mono_ns());
}

static int ms_until(uint64_t ns)
{
	uint64_t ms = (ns + 999999) / 1000000;
	return ms > 60000 ? 60000 : (int)ms;
}

static void *serve_main(void *arg)
{
	struct sb_server *s = arg;
	struct sb_peer_table *t = &s->peers;
	struct pollfd pfd[2 + SB_PEER_MAX];
	uint32_t who[2 + SB_PEER_MAX];
	uint64_t period = (uint64_t)s->cfg.heartbeat_ms * 1000000ull;
	uint64_t next_beat = sb__mono_ns() + period;
	uint64_t batch_in = 0;

	sb__peers_publish(t, sb__mono_ns());
	for (;;) {
		nfds_t n = 0;
		uint64_t now = sb__mono_ns();
		bool accepting = s->listen_fd >= 0 && now >= s->accept_paused_until;

		pfd[n++] = (struct pollfd){ .fd = s->stop_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = accepting ? s->listen_fd : -1, .events = POLLIN };
		pthread_mutex_lock(&t->lock);
		for (uint32_t i = 0; i < SB_PEER_MAX; i++) {
			if (t->peer[i].fd < 0 || !t->peer[i].page)
				continue;
			who[n] = i;
			pfd[n++] = (struct pollfd){ .fd = t->peer[i].fd, .events = POLLIN };
		}
		pthread_mutex_unlock(&t->lock);
		uint64_t wait = next_beat > now ? next_beat - now : 0;
		if (batch_in && batch_in < wait)
			wait = batch_in;
		int r = poll(pfd, n, ms_until(wait));
		if (r < 0 && errno != EINTR) {
			say(s, "serving thread: poll: %s", strerror(errno));
			usleep(10000);
			continue;
		}
		bool changed = false;
		if (r > 0 && pfd[0].revents) {
			uint64_t v;
			(void)!read(s->stop_fd, &v, sizeof(v));
			if (sb_load_acquire(&s->stopping)) /* pairs with sb__serve_stop */
				break;
			changed = true; /* a hand-over entered the table */
		}
		if (r > 0 && pfd[1].revents)
			changed |= accept_some(s);
		for (nfds_t k = 2; r > 0 && k < n; k++)
			if (pfd[k].revents)
				changed |= service(s, who[k], pfd[k].fd, pfd[k].revents);
		now = sb__mono_ns();
		batch_in = sb__peers_arm_batch(t, now);
		if (now >= next_beat) {
			beat(s);
			sb__peers_net(t);
			changed = true;
			log_window(s, now);
			/* Keep the cadence; after a stall, beat again one period from now. */
			next_beat += period;
			if (next_beat <= now)
				next_beat = now + period;
		}
		if (changed)
			sb__peers_publish(t, now);
	}
	return NULL;
}

static void server_free(struct sb_server *s)
{
	if (s->peers_up)
		sb__peers_fini(&s->peers);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->lock_fd >= 0) {
		/* Still holding the lock, so no other coordinator is between these two. */
		unlink(s->lock_path);
		close(s->lock_fd);
	}
	free(s);
}

/* Where consumers connect, as sb_consumer_open_pid reads it from the header. */
static void publish_name(struct sb_server *s)
{
	char *name = s->b->hdr->serve_name;

	memset(name, 0, SB_SERVE_NAME_MAX);
	if (s->listen_fd < 0)
		return;
	if (s->abstract) {
		name[0] = '@';
		memcpy(name + 1, s->addr.sun_path + 1,
		       s->addrlen - offsetof(struct sockaddr_un, sun_path) - 1);
	} else {
		snprintf(name, SB_SERVE_NAME_MAX, "%s", s->addr.sun_path);
	}
}

int sb_bridge_serve(struct sb_bridge *b, const struct sb_serve_config *cfg)
{
	sigset_t all, old;
	int err;

	if (!b || !cfg)
		return sb__fail(-EINVAL, "sb_bridge_serve: bridge or config is NULL");
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
	s->listen_fd = s->lock_fd = -1;
	s->uid = geteuid();
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_fd < 0) {
		err = sb__fail(-errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (cfg->socket) {
		err = open_listener(s, cfg->socket);
		if (err)
			goto fail;
	}
	publish_name(s);
	sb__beat_period(b->hdr, cfg->heartbeat_ms);
	beat(s);
	/* The threads take no signal: SIGINT and friends stay the application's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = sb__peers_init(&s->peers, b);
	s->peers_up = err == 0;
	if (!err) {
		err = -pthread_create(&s->thread, NULL, serve_main, s);
		if (err)
			sb__fail(err, "cannot start the serving thread: %s", strerror(-err));
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		memset(b->hdr->serve_name, 0, SB_SERVE_NAME_MAX);
		if (s->listen_fd >= 0 && !s->abstract)
			unlink(s->addr.sun_path);
		goto fail;
	}
	b->server = s;
	return 0;
fail:
	server_free(s);
	return err;
}

struct sb_peer_table *sb__serve_peers(struct sb_bridge *b)
{
	return &b->server->peers;
}

void sb__serve_ring_all(struct sb_bridge *b)
{
	if (b->server)
		sb__peers_ring_all(&b->server->peers);
}

int sb_bridge_consumer_socket(struct sb_bridge *b, int *fd_out)
{
	static const uint64_t one = 1;
	int sv[2];

	if (!b || !fd_out)
		return sb__fail(-EINVAL, "sb_bridge_consumer_socket: NULL argument");
	*fd_out = -1;
	if (!b->server)
		return sb__fail(-ENOTCONN,
				"the bridge does not serve: call sb_bridge_serve() first "
				"(with socket NULL to serve hand-overs only)");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return sb__fail(-errno, "socketpair: %s", strerror(errno));
	int err = fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0
		      ? 0
		      : sb__fail(-errno, "fcntl(O_NONBLOCK): %s", strerror(errno));
	if (!err)
		err = sb__peers_admit(&b->server->peers, sv[0], 0, NULL);
	if (err) {
		close(sv[0]);
		close(sv[1]);
		return err;
	}
	/* The serving thread polls its new connection from its next wake-up on. */
	(void)!write(b->server->stop_fd, &one, sizeof(one));
	*fd_out = sv[1];
	return 0;
}

void sb__serve_stop(struct sb_bridge *b)
{
	struct sb_server *s = b->server;
	static const uint64_t one = 1;

	if (!s)
		return;
	sb_store_release(&s->stopping, 1); /* pairs with the serving thread's load */
	(void)!write(s->stop_fd, &one, sizeof(one));
	pthread_join(s->thread, NULL);
	memset(b->hdr->serve_name, 0, SB_SERVE_NAME_MAX);
	if (s->listen_fd >= 0 && !s->abstract)
		unlink(s->addr.sun_path);
	server_free(s); /* stops the waker, hangs up on every consumer */
	b->server = NULL;
}
