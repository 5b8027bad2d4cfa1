/*
 * A program built against an installed snapbridge, as a user builds one:
 * it creates a bridge, stores a report, attaches a consumer through the
 * bridge's descriptors, drains it, and prints the runtime version.
 */
#include <stdio.h>
#include <string.h>

#include <snapbridge/snapbridge.h>

static int on_entry(void *user, const struct sb_entry *e)
{
	(void)e;
	++*(int *)user;
	return 0;
}

int main(void)
{
	static const unsigned char report[] = { 0x81, 0xa1, 'k', 0x01 }; /* {"k": 1} */
	struct sb_report r = { .schema = "t.v1", .msgpack = report, .msgpack_len = sizeof(report) };
	struct sb_bridge *b;
	struct sb_consumer *c;
	int delivered = 0, data_fd, ctl_fd;

	if (sb_bridge_create(NULL, NULL, &b) || sb_bridge_store(b, "first", &r)) {
		fprintf(stderr, "bridge: %s\n", sb_last_error());
		return 1;
	}
	if (sb_bridge_data_fd(b, &data_fd) || sb_bridge_control_fd(b, &ctl_fd) ||
	    sb_consumer_open_fds(data_fd, ctl_fd, 0, &c) ||
	    sb_consumer_drain(c, on_entry, &delivered, NULL)) {
		fprintf(stderr, "consumer: %s\n", sb_last_error());
		return 1;
	}
	printf("snapbridge %s: %d delivered\n", sb_version(), delivered);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
	return delivered == 1 && strcmp(sb_version(), SNAPBRIDGE_VERSION) == 0 ? 0 : 1;
}
