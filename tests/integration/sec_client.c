/*
 * A subscriber for test_client_sec.py: libherald with a token
 * ($HERALD_TOKEN) renewed by a callback that runs a command, and TLS when
 * a CA file is given.  It prints what happens, one line each, flushed:
 *
 *	MSG <topic> <payload>
 *	EVENT <type> <err> <text>	(CONNECTED, AUTH, ERROR, DISCONNECTED...)
 *	REFRESH <n>			the callback ran for the n-th time
 *
 * and exits 0 after COUNT messages, or with the negated error that closed
 * the client for good.
 *
 * usage: sec_client ADDR PATTERN COUNT REFRESH_COMMAND|"" [CA_FILE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herald.h"

struct state {
	const char	*refresh_cmd;
	long		 count, seen;
	int		 refreshes;
};

static const char *const type_name[] = {
	[HERALD_EVENT_CONNECTED] = "CONNECTED",
	[HERALD_EVENT_DISCONNECTED] = "DISCONNECTED",
	[HERALD_EVENT_SUBSCRIBED] = "SUBSCRIBED",
	[HERALD_EVENT_GAP] = "GAP", [HERALD_EVENT_RESET] = "RESET",
	[HERALD_EVENT_ERROR] = "ERROR", [HERALD_EVENT_AUTH] = "AUTH",
};

static void
on_msg(struct herald_client *c, const struct herald_msg *m, void *arg)
{
	struct state *st = arg;

	printf("MSG %s %s\n", m->topic, m->payload);
	fflush(stdout);
	st->seen++;
}

static void
on_event(struct herald_client *c, const struct herald_event *ev, void *arg)
{
	printf("EVENT %s %d %s\n", type_name[ev->type], ev->err, ev->text);
	fflush(stdout);
}

/* The refresh callback: the first line the command prints. */
static int
refresh(struct herald_client *c, char *buf, size_t len, void *arg)
{
	struct state *st = arg;
	FILE *p = popen(st->refresh_cmd, "r");
	int ok;

	printf("REFRESH %d\n", ++st->refreshes);
	fflush(stdout);
	if (p == NULL)
		return -1;
	ok = fgets(buf, (int)len, p) != NULL;
	if (pclose(p) != 0 || !ok)
		return -1;
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

int
main(int argc, char **argv)
{
	struct state st = { NULL, 0, 0, 0 };
	struct herald_options o;
	struct herald_client *c;
	struct herald_tls tls;
	const char *token = getenv("HERALD_TOKEN");
	int rc;

	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: sec_client ADDR PATTERN COUNT "
		    "REFRESH_COMMAND [CA_FILE]\n");
		return 2;
	}
	st.count = atol(argv[3]);
	st.refresh_cmd = argv[4];
	herald_options_init(&o);
	o.reconnect_max_ms = 500;
	o.on_event = on_event;
	o.event_arg = &st;
	if ((c = herald_new(argv[1], &o)) == NULL)
		return 2;
	if (argc == 6) {
		herald_tls_init(&tls);
		tls.ca_file = argv[5];
		if (herald_set_tls(c, &tls) != HERALD_OK) {
			fprintf(stderr, "%s\n", herald_errmsg(c));
			return 2;
		}
	}
	if (token != NULL && herald_set_token(c, token) != HERALD_OK) {
		fprintf(stderr, "%s\n", herald_errmsg(c));
		return 2;
	}
	if (*st.refresh_cmd != '\0')
		herald_set_token_refresh(c, refresh, &st);
	herald_sub(c, argv[2], on_msg, &st);
	rc = herald_open(c);
	while (rc == HERALD_OK && st.seen < st.count)
		rc = herald_run_once(c, -1);
	if (rc != HERALD_OK)
		fprintf(stderr, "sec_client: %s\n", herald_errmsg(c));
	herald_close(c);
	return -rc;
}
