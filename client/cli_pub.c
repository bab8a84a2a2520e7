/*
 * herald pub TOPIC PAYLOAD, and herald pub TOPIC - for bulk loads: the
 * standard input is read in big blocks, every line becomes a PUB in a
 * corked output queue (written in 64 KiB chunks), and one SYNC at the end
 * says whether the server took them all.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define PUB_READ_CHUNK	(256 * 1024)	/* bytes read from stdin at once */
#define PUB_LINE_MAX	(16 * 1024 * 1024) /* longest stdin line */
#define PUB_WARN_MAX	5		/* bad lines reported one by one */

struct pub_state {
	uint64_t	 refused;	/* PUBs the server refused */
	uint64_t	 bad;		/* lines that cannot be payloads */
	uint64_t	 lineno;
};

/* A refused PUB: count it, show the first few. */
static void
on_event(struct herald_client *c, const struct herald_event *ev, void *arg)
{
	struct pub_state *st = arg;

	if (ev->type != HERALD_EVENT_ERROR)
		return;
	if (st->refused++ < PUB_WARN_MAX)
		cli_warn("%s", ev->text);
}

/* Publish one stdin line (without LF); empty lines are skipped. */
static int
pub_line(struct herald_client *c, const char *topic, char *line, size_t len,
    struct pub_state *st)
{
	st->lineno++;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return HERALD_OK;
	if (!herald_valid_payload(line, len)) {
		if (st->bad++ < PUB_WARN_MAX)
			cli_warn("line %" PRIu64 ": a NUL byte: not published",
			    st->lineno);
		return HERALD_OK;
	}
	return herald_pub(c, topic, line, len);
}

/* Grow buf (of *cap bytes) to hold need bytes; -1 if too long. */
static int
grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	if (need > PUB_LINE_MAX + PUB_READ_CHUNK)
		return -1;
	size_t n = *cap * 2 > need ? *cap * 2 : need;
	char *b = realloc(*buf, n);
	if (b == NULL)
		return -1;
	*buf = b;
	*cap = n;
	return 0;
}

/* Publish every line of the standard input. */
static int
pub_stdin(struct herald_client *c, const char *topic, struct pub_state *st)
{
	size_t cap = 2 * PUB_READ_CHUNK, len = 0, start;
	char *buf = malloc(cap);
	int rc = HERALD_OK;

	if (buf == NULL)
		return cli_fail("out of memory");
	herald_cork(c, 1);
	for (;;) {
		if (grow(&buf, &cap, len + PUB_READ_CHUNK) == -1) {
			free(buf);
			return cli_fail("line %" PRIu64 " is longer than %d "
			    "bytes", st->lineno + 1, PUB_LINE_MAX);
		}
		ssize_t n = read(0, buf + len, PUB_READ_CHUNK);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			free(buf);
			return cli_fail("reading the standard input: %s",
			    strerror(errno));
		}
		if (n == 0)
			break;
		len += n;
		char *lf;
		for (start = 0; rc == HERALD_OK && (lf = memchr(buf + start,
		    '\n', len - start)) != NULL; start = lf - buf + 1)
			rc = pub_line(c, topic, buf + start, lf - buf - start,
			    st);
		memmove(buf, buf + start, len - start);
		len -= start;
		if (rc != HERALD_OK)
			break;
	}
	if (rc == HERALD_OK && len > 0)		/* no LF at the end */
		rc = pub_line(c, topic, buf, len, st);
	free(buf);
	herald_cork(c, 0);
	if (rc != HERALD_OK)
		return cli_fail("line %" PRIu64 ": %s", st->lineno,
		    herald_errmsg(c));
	return 0;
}

/* herald pub [OPTIONS] TOPIC PAYLOAD|- */
int
cli_run_pub(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = { CLI_COMMON_LONG };
	struct pub_state st = { 0, 0, 0 };
	struct herald_options o;
	struct herald_client *c;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, CLI_SHORTOPTS(""), lo,
	    NULL)) != -1)
		cli_common_opt(cli, ch, optarg);
	if (argc - optind != 2)
		cli_usage_error(cli, "expected TOPIC and PAYLOAD (or -)");
	const char *topic = argv[optind], *payload = argv[optind + 1];
	int bulk = strcmp(payload, "-") == 0;
	if (!herald_valid_topic(topic))
		cli_usage_error(cli, "bad topic '%s'", topic);
	if (!bulk && !herald_valid_payload(payload, strlen(payload)))
		cli_usage_error(cli, "bad payload: it must not be empty nor "
		    "hold a CR or LF");
	herald_options_init(&o);
	o.reconnect = 0;	/* a lost PUB must not go unnoticed */
	o.on_event = on_event;
	o.event_arg = &st;
	if ((c = cli_open(cli, cli->ingest, &o, &rc)) == NULL)
		return rc;
	if (bulk)
		rc = pub_stdin(c, topic, &st);
	else if ((rc = herald_pub(c, topic, payload, strlen(payload))) != 0)
		rc = cli_fail("%s", herald_errmsg(c));
	if (rc == 0 && (rc = herald_sync(c, NULL)) != HERALD_OK) {
		if (rc == HERALD_ESERVER)
			cli_warn("%" PRIu64 " message%s refused", st.refused,
			    st.refused == 1 ? "" : "s");
		else
			cli_warn("%s", herald_errmsg(c));
		rc = EXIT_FAIL;
	}
	if (rc == 0 && st.bad > 0) {
		cli_warn("%" PRIu64 " line%s not published", st.bad,
		    st.bad == 1 ? "" : "s");
		rc = EXIT_FAIL;
	}
	herald_close(c);
	return rc;
}
