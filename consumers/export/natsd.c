/*
 * consumers/export/natsd.c - a nats-server child for the export's tests
 * and benchmark: JetStream on, loopback only, its store, log and ports
 * file under a directory the caller owns, stopped by pid.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "export.h"
#include "wire.h"

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	remove(p);
	return 0;
}

void sbx_remove_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int sbx_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port = -errno;

	if (fd < 0)
		return port;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	else
		port = -errno;
	close(fd);
	return port;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* The client URL from the server's ports file, once it has written one. */
static bool read_ports(struct sbx_natsd *d)
{
	char path[300], buf[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/nats-server_%d.ports", d->dir, (int)d->pid);
	if (!(f = fopen(path, "r")))
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *u = strstr(buf, "nats://");
	int port;
	if (!u || sscanf(u, "nats://127.0.0.1:%d", &port) != 1)
		return false;
	d->port = port;
	snprintf(d->url, sizeof(d->url), "nats://127.0.0.1:%d", port);
	return true;
}

static bool accepts(const char *url)
{
	natsConnection *nc = NULL;
	natsOptions *o = NULL;
	bool ok = false;

	if (natsOptions_Create(&o) == NATS_OK && natsOptions_SetURL(o, url) == NATS_OK &&
	    natsOptions_SetTimeout(o, 1000) == NATS_OK &&
	    natsOptions_SetAllowReconnect(o, false) == NATS_OK &&
	    natsConnection_Connect(&nc, o) == NATS_OK)
		ok = true;
	natsConnection_Destroy(nc);
	natsOptions_Destroy(o);
	return ok;
}

int sbx_natsd_start(struct sbx_natsd *d, const char *dir, const char *name, int port,
		    int cluster_port, const char *routes, int timeout_ms)
{
	char store[300], log[300], portarg[16], cluster[64];
	int pipefd[2];

	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "%s", dir);
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->cluster_port = cluster_port;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return sbx__fail(-errno, "cannot make %s: %s", dir, strerror(errno));
	snprintf(store, sizeof(store), "%s/store", dir);
	snprintf(log, sizeof(log), "%s/log", dir);
	snprintf(portarg, sizeof(portarg), "%d", port > 0 ? port : -1);
	snprintf(cluster, sizeof(cluster), "nats://127.0.0.1:%d", cluster_port);
	/* A pipe that closes on exec tells an exec failure from a start. */
	if (pipe2(pipefd, O_CLOEXEC) != 0)
		return sbx__fail(-errno, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		return sbx__fail(-errno, "fork: %s", strerror(errno));
	if (pid == 0) {
		const char *argv[24] = {
			"nats-server",	    "-js", "-a", "127.0.0.1", "-p", portarg, "-sd", store,
			"--ports_file_dir", dir,   "-l", log,	      "-n", name
		};
		int n = 14;
		int null = open("/dev/null", O_RDWR);

		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test or benchmark */
		close(pipefd[0]);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (routes) {
			argv[n++] = "--cluster_name";
			argv[n++] = "sbtest";
			argv[n++] = "--cluster";
			argv[n++] = cluster;
			argv[n++] = "--routes";
			argv[n++] = routes;
		}
		argv[n] = NULL;
		execvp("nats-server", (char *const *)argv);
		int e = errno;
		if (write(pipefd[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	close(pipefd[1]);
	int e = 0;
	ssize_t got = read(pipefd[0], &e, sizeof(e));
	close(pipefd[0]);
	if (got == (ssize_t)sizeof(e)) {
		waitpid(pid, NULL, 0);
		return sbx__fail(-ENOENT,
				 "cannot run nats-server: %s (apt-get install nats-server)",
				 strerror(e));
	}
	d->pid = pid;
	for (int waited = 0;; waited += 20) {
		int st;

		if (waitpid(pid, &st, WNOHANG) == pid) {
			d->pid = 0;
			return sbx__fail(-ECHILD, "nats-server exited at start (see %s)", log);
		}
		if (read_ports(d) && accepts(d->url))
			return 0;
		if (waited >= timeout_ms) {
			sbx_natsd_stop(d, SIGKILL);
			return sbx__fail(-ETIMEDOUT,
					 "nats-server did not accept connections in %d ms",
					 timeout_ms);
		}
		sleep_ms(20);
	}
}

void sbx_natsd_stop(struct sbx_natsd *d, int sig)
{
	if (d->pid <= 0)
		return;
	kill(d->pid, sig);
	while (waitpid(d->pid, NULL, 0) < 0 && errno == EINTR)
		;
	d->pid = 0;
}
