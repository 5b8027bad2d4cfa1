/*
 * A program built against an installed snapbridge, as a user builds one:
 * it creates a bridge, stores a report, serves hand-overs only, attaches
 * a consumer through a socket the bridge hands over, drains it, and
 * prints the runtime version.
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
	struct sb_serve_config sc;
	struct sb_bridge *b;
	struct sb_consumer *c;
	int delivered = 0, fd;

	if (sb_bridge_create(NULL, NULL, &b) || sb_bridge_store(b, "first", &r)) {
		fprintf(stderr, "bridge: %s\n", sb_last_error());
		return 1;
	}
	sb_serve_config_default(&sc); /* socket NULL: hand-overs only */
	if (sb_bridge_serve(b, &sc) || sb_bridge_consumer_socket(b, &fd) ||
	    sb_consumer_open_socket(fd, 0, &c) ||
	    sb_consumer_drain(c, on_entry, &delivered, NULL)) {
		fprintf(stderr, "consumer: %s\n", sb_last_error());
		return 1;
	}
	printf("snapbridge %s: %d delivered\n", sb_version(), delivered);
	sb_consumer_close(c);
	sb_bridge_destroy(b);
	return delivered == 1 && strcmp(sb_version(), SNAPBRIDGE_VERSION) == 0 ? 0 : 1;
}
