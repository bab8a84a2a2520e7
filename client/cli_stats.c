/*
 * herald stats: the server's STATS as a table, lines or JSON.
 * herald top: STATS again and again, with rates from successive samples.
 * STATS sums every worker; figures named worker.<N>.<name>, should a
 * server send them, are shown per worker.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define TOP_WORKERS_MAX	64	/* per-worker columns shown */

/* The value of STAT name, or 0 (and *found = 0). */
static uint64_t
stat_get(const struct herald_stat *st, size_t n, const char *name,
    int *found)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(st[i].name, name) == 0) {
			if (found != NULL)
				*found = 1;
			return st[i].value;
		}
	}
	if (found != NULL)
		*found = 0;
	return 0;
}

/* 1 if name is a per-worker figure: worker.<N>.<name>. */
static int
per_worker(const char *name, unsigned *id, const char **rest)
{
	char *end;

	if (strncmp(name, "worker.", 7) != 0)
		return 0;
	unsigned long v = strtoul(name + 7, &end, 10);
	if (end == name + 7 || *end != '.' || end[1] == '\0')
		return 0;
	*id = v;
	*rest = end + 1;
	return 1;
}

/* NAME VALUE MEANING, aligned. */
static void
print_table(const struct herald_stat *st, size_t n)
{
	char up[32];
	int w = 4;

	for (size_t i = 0; i < n; i++)
		if ((int)strlen(st[i].name) > w)
			w = strlen(st[i].name);
	for (size_t i = 0; i < n; i++) {
		const char *help = fmt_stat_help(st[i].name);
		printf("%-*s %14" PRIu64 "  %s", w, st[i].name, st[i].value,
		    help != NULL ? help : "");
		if (strcmp(st[i].name, "uptime") == 0) {
			fmt_duration(up, sizeof(up), st[i].value);
			printf(" (%s)", up);
		}
		putchar('\n');
	}
}

/* The figures in the format asked for. */
static void
print_stats(const struct herald_stat *st, size_t n, enum cli_format fmt)
{
	if (fmt == FMT_TABLE) {
		print_table(st, n);
		return;
	}
	if (fmt == FMT_PLAIN) {
		for (size_t i = 0; i < n; i++)
			printf("%s %" PRIu64 "\n", st[i].name, st[i].value);
		return;
	}
	putchar('{');
	for (size_t i = 0; i < n; i++) {
		fmt_json_string(stdout, st[i].name, strlen(st[i].name));
		printf(":%" PRIu64 "%s", st[i].value, i + 1 < n ? "," : "");
	}
	puts("}");
}

/* herald stats [OPTIONS] */
int
cli_run_stats(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "format", required_argument, NULL, 'f' }, CLI_COMMON_LONG };
	enum cli_format fmt = FMT_TABLE;
	struct herald_options o;
	struct herald_client *c;
	struct herald_stat *st;
	size_t n;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, CLI_SHORTOPTS("f:"), lo,
	    NULL)) != -1) {
		if (ch == 'f') {
			if (fmt_parse_format(optarg, 1, &fmt) == -1)
				cli_usage_error(cli, "bad format '%s': "
				    "expected table, plain or json", optarg);
		} else {
			cli_common_opt(cli, ch, optarg);
		}
	}
	if (optind != argc)
		cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	herald_options_init(&o);
	o.reconnect = 0;
	if ((c = cli_open(cli, cli->server, &o, &rc)) == NULL)
		return rc;
	if ((rc = herald_stats(c, &st, &n)) != HERALD_OK) {
		rc = cli_fail("stats: %s", herald_errmsg(c));
		herald_close(c);
		return rc;
	}
	herald_close(c);
	print_stats(st, n, fmt);
	free(st);
	cli_flush_stdout();
	return 0;
}

/* --- top ----------------------------------------------------------------- */

struct sample {
	struct herald_stat	*st;
	size_t			 n;
	uint64_t		 at_ms;
};

/* Figures that are levels, not counts: no rate. */
static int
is_gauge(const char *name)
{
	return strcmp(name, "clients") == 0 || strcmp(name, "workers") == 0 ||
	    strcmp(name, "retained") == 0 || strcmp(name, "uptime") == 0;
}

/* The rate of name between two samples, as text ("" for a gauge). */
static void
rate_of(char *buf, size_t len, const char *name, uint64_t v,
    const struct sample *prev, uint64_t at_ms, const char *prev_name)
{
	int found;

	buf[0] = '\0';
	if (is_gauge(name) || prev == NULL || at_ms <= prev->at_ms)
		return;
	uint64_t was = stat_get(prev->st, prev->n, prev_name, &found);
	if (!found || was > v) {
		snprintf(buf, len, "-");	/* new, or a restart */
		return;
	}
	fmt_rate(buf, len, (v - was) * 1000.0 / (at_ms - prev->at_ms));
}

/* The figures top shows first, in this order; others when not 0. */
static const char *const top_first[] = { "clients", "connections",
	"msgs_in", "msgs_out", "bytes_out", "gaps", "slow_consumers",
	"retained", NULL };

/* 1 if top shows name among the main figures. */
static int
is_first(const char *name)
{
	for (int i = 0; top_first[i] != NULL; i++)
		if (strcmp(top_first[i], name) == 0)
			return 1;
	return 0;
}

/* One figure's line: name, total, rate. */
static void
top_line(const struct sample *cur, const struct sample *prev, size_t i)
{
	char rate[32];

	rate_of(rate, sizeof(rate), cur->st[i].name, cur->st[i].value, prev,
	    cur->at_ms, cur->st[i].name);
	printf("%-22s %14" PRIu64, cur->st[i].name, cur->st[i].value);
	printf(rate[0] != '\0' ? " %10s\n" : "\n", rate);
}

/* The summed figures with rates: the main ones, then any other not 0. */
static void
top_totals(const struct sample *cur, const struct sample *prev)
{
	unsigned id;
	const char *rest;

	printf("%-22s %14s %10s\n", "FIGURE", "TOTAL", "PER SEC");
	for (int k = 0; top_first[k] != NULL; k++)
		for (size_t i = 0; i < cur->n; i++)
			if (strcmp(cur->st[i].name, top_first[k]) == 0)
				top_line(cur, prev, i);
	for (size_t i = 0; i < cur->n; i++) {
		const char *name = cur->st[i].name;
		if (is_first(name) || cur->st[i].value == 0 ||
		    strcmp(name, "uptime") == 0 ||
		    strcmp(name, "workers") == 0 ||
		    strcmp(name, "head_seq") == 0 ||
		    per_worker(name, &id, &rest))
			continue;
		top_line(cur, prev, i);
	}
}

/* The per-worker figures (worker.<N>.<name>), if the server sends any. */
static void
top_workers(const struct sample *cur, const struct sample *prev)
{
	char rate[32];
	unsigned id;
	const char *rest;
	int any = 0;

	for (size_t i = 0; i < cur->n; i++) {
		if (!per_worker(cur->st[i].name, &id, &rest))
			continue;
		if (!any++)
			printf("\n%-8s %-22s %14s %10s\n", "WORKER", "FIGURE",
			    "TOTAL", "PER SEC");
		rate_of(rate, sizeof(rate), rest, cur->st[i].value, prev,
		    cur->at_ms, cur->st[i].name);
		printf("%-8u %-22s %14" PRIu64, id, rest, cur->st[i].value);
		printf(rate[0] != '\0' ? " %10s\n" : "\n", rate);
	}
	if (!any)
		printf("\n(the server reports totals only, not per worker)\n");
}

/* One screenful. */
static void
top_frame(const struct cli *cli, const struct sample *cur,
    const struct sample *prev, int clear)
{
	char up[32], clock[16];
	time_t now = time(NULL);

	strftime(clock, sizeof(clock), "%H:%M:%S", localtime(&now));
	fmt_duration(up, sizeof(up), stat_get(cur->st, cur->n, "uptime",
	    NULL));
	if (clear)
		fputs("\033[H\033[2J", stdout);
	printf("herald top - %s - up %s - %" PRIu64 " workers - head seq %"
	    PRIu64 " - %s\n\n", cli->server, up, stat_get(cur->st, cur->n,
	    "workers", NULL), stat_get(cur->st, cur->n, "head_seq", NULL),
	    clock);
	top_totals(cur, prev);
	top_workers(cur, prev);
}

/* A monotonic clock in ms. */
static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until at_ms, keeping the connection served. */
static void
top_sleep(struct herald_client *c, uint64_t at_ms)
{
	uint64_t now;

	while ((now = mono_ms()) < at_ms)
		herald_run_once(c, (int)(at_ms - now));
}

/* The loop of top: sample, show, sleep. */
static int
top_loop(const struct cli *cli, struct herald_client *c, int delay_ms,
    uint64_t iterations, int clear)
{
	struct sample cur = { 0 }, prev = { 0 };
	int have_prev = 0;
	uint64_t next = mono_ms();

	for (uint64_t i = 0; iterations == 0 || i < iterations; i++) {
		if (i > 0)
			top_sleep(c, next);
		int rc = herald_stats(c, &cur.st, &cur.n);
		cur.at_ms = mono_ms();
		next += delay_ms;
		if (next < cur.at_ms)	/* a slow answer: no catching up */
			next = cur.at_ms;
		if (rc != HERALD_OK) {
			cli_warn("no figures: %s", herald_errmsg(c));
			continue;
		}
		if (have_prev && !clear)
			putchar('\n');
		top_frame(cli, &cur, have_prev ? &prev : NULL, clear);
		cli_flush_stdout();
		free(prev.st);
		prev = cur;
		have_prev = 1;
		cur.st = NULL;
	}
	free(prev.st);
	return 0;
}

/* herald top [OPTIONS] */
int
cli_run_top(struct cli *cli, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "delay", required_argument, NULL, 'd' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "batch", no_argument, NULL, 'b' }, CLI_COMMON_LONG };
	struct herald_options o;
	struct herald_client *c;
	uint64_t iterations = 0;
	int ch, rc, delay_ms = 1000, batch = !isatty(1);

	while ((ch = getopt_long(argc, argv, CLI_SHORTOPTS("d:n:b"), lo,
	    NULL)) != -1) {
		if (ch == 'd' && fmt_parse_seconds(optarg, &delay_ms) == -1)
			cli_usage_error(cli, "bad delay '%s': expected "
			    "seconds", optarg);
		else if (ch == 'n' && (fmt_parse_u64(optarg, &iterations) ==
		    -1 || iterations == 0))
			cli_usage_error(cli, "bad count '%s'", optarg);
		else if (ch == 'b')
			batch = 1;
		else if (ch != 'd' && ch != 'n')
			cli_common_opt(cli, ch, optarg);
	}
	if (optind != argc)
		cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	herald_options_init(&o);
	if ((c = cli_open(cli, cli->server, &o, &rc)) == NULL)
		return rc;
	rc = top_loop(cli, c, delay_ms, iterations, !batch);
	herald_close(c);
	return rc;
}
