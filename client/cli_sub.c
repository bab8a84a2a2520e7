/*
 * herald sub PATTERN...: print messages as they come; the library
 * reconnects and resumes.  Notices about the connection go to stderr; a
 * gap goes to stderr in plain format and into the stream in JSON.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct sub_state {
	enum cli_format	 fmt;
	uint64_t	 count;		/* 0 = no limit */
	uint64_t	 printed;
	int		 connects;
	int		 lost;		/* lost, not yet reconnected */
	int		 exit_code;	/* >= 0: stop with it */
};

/* Print a message; stop after --count. */
static void
on_msg(struct herald_client *c, const struct herald_msg *m, void *arg)
{
	struct sub_state *st = arg;

	if (st->exit_code >= 0)
		return;
	fmt_msg(stdout, st->fmt, m);
	if (st->count != 0 && ++st->printed >= st->count)
		st->exit_code = 0;
}

/* A gap: into the stream (JSON), or on stderr. */
static void
on_gap(struct sub_state *st, const struct herald_event *ev)
{
	if (st->fmt == FMT_JSON) {
		printf("{\"type\":\"gap\",\"first\":%" PRIu64 ",\"last\":%"
		    PRIu64 "}\n", ev->first, ev->last);
		return;
	}
	cli_warn("gap: messages %" PRIu64 "..%" PRIu64 " were lost%s%s%s",
	    ev->first, ev->last, ev->name ? " (" : "",
	    ev->name ? ev->name : "", ev->name ? ")" : "");
}

/* Say what happens to the connection; stop on a refusal. */
static void
on_event(struct herald_client *c, const struct herald_event *ev, void *arg)
{
	struct sub_state *st = arg;

	switch (ev->type) {
	case HERALD_EVENT_CONNECTED:
		if (st->connects++ > 0)
			cli_warn("reconnected to %s", ev->text);
		st->lost = 0;
		break;
	case HERALD_EVENT_DISCONNECTED:
		if (st->connects == 0)
			break;		/* herald_open says why */
		if (ev->retry_ms < 0) {
			cli_warn("%s", ev->text);
			st->exit_code = cli_exit_code(ev->err);
			if (st->exit_code == 0 || st->exit_code == EXIT_USAGE)
				st->exit_code = EXIT_FAIL;
		} else if (!st->lost) {	/* not every failed attempt */
			cli_warn("%s; reconnecting", ev->text);
		}
		st->lost = 1;
		break;
	case HERALD_EVENT_GAP:
		on_gap(st, ev);
		break;
	case HERALD_EVENT_RESET:
		cli_warn("%s", ev->text);
		break;
	case HERALD_EVENT_ERROR:
		cli_warn("%s", ev->text);
		st->exit_code = EXIT_FAIL;
		break;
	case HERALD_EVENT_SUBSCRIBED:
	case HERALD_EVENT_AUTH:
		break;
	}
}

/* Parse sub's options; returns the index of the first pattern. */
static int
sub_options(struct cli *cli, int argc, char **argv, struct sub_state *st,
    int *has_since, uint64_t *since, int *reconnect)
{
	enum { OPT_SINCE = 256, OPT_NO_RECONNECT };
	static const struct option lo[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "count", required_argument, NULL, 'c' },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "no-reconnect", no_argument, NULL, OPT_NO_RECONNECT },
		CLI_COMMON_LONG };
	int ch;

	while ((ch = getopt_long(argc, argv, CLI_SHORTOPTS("f:c:"), lo,
	    NULL)) != -1) {
		switch (ch) {
		case 'f':
			if (fmt_parse_format(optarg, 0, &st->fmt) == -1)
				cli_usage_error(cli, "bad format '%s': "
				    "expected plain or json", optarg);
			break;
		case 'c':
			if (fmt_parse_u64(optarg, &st->count) == -1 ||
			    st->count == 0)
				cli_usage_error(cli, "bad count '%s': expected"
				    " a number above 0", optarg);
			break;
		case OPT_SINCE:
			if (fmt_parse_u64(optarg, since) == -1)
				cli_usage_error(cli, "bad seq '%s'", optarg);
			*has_since = 1;
			break;
		case OPT_NO_RECONNECT:
			*reconnect = 0;
			break;
		default:
			cli_common_opt(cli, ch, optarg);
		}
	}
	if (optind == argc)
		cli_usage_error(cli, "expected at least one PATTERN");
	return optind;
}

/* herald sub [OPTIONS] PATTERN... */
int
cli_run_sub(struct cli *cli, int argc, char **argv)
{
	struct sub_state st = { FMT_PLAIN, 0, 0, 0, 0, -1 };
	struct herald_options o;
	struct herald_client *c;
	uint64_t since = 0;
	int has_since = 0, rc;

	herald_options_init(&o);
	int first = sub_options(cli, argc, argv, &st, &has_since, &since,
	    &o.reconnect);
	o.on_event = on_event;
	o.event_arg = &st;
	if ((c = cli_client(cli, cli->server, &o, &rc)) == NULL)
		return rc;
	for (int i = first; i < argc; i++) {
		rc = has_since ? herald_sub_since(c, argv[i], since, on_msg,
		    &st) : herald_sub(c, argv[i], on_msg, &st);
		if (rc != HERALD_OK) {
			cli_warn("%s", herald_errmsg(c));
			herald_close(c);
			return cli_exit_code(rc);
		}
	}
	if ((rc = herald_open(c)) != HERALD_OK) {
		cli_warn("%s", herald_errmsg(c));
		herald_close(c);
		return cli_exit_code(rc);
	}
	/* herald_open may have run the first answers' callbacks already (a
	 * snapshot that came in the same read as HELLO): out with them
	 * before waiting for more. */
	cli_flush_stdout();
	while (st.exit_code < 0) {
		rc = herald_run_once(c, -1);
		cli_flush_stdout();
		if (rc != HERALD_OK && st.exit_code < 0)
			st.exit_code = cli_fail("%s", herald_errmsg(c));
	}
	herald_close(c);
	return st.exit_code;
}
