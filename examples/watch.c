/*
 * herald-watch: keep a table of the newest value of every topic that
 * matches, and show it as it changes; or send a producer a command and
 * wait for its answer.  An example of libherald used blocking: one
 * client, herald_run_once() in a loop, no event library.
 *
 *   herald-watch [-s SERVER] [-1] [-c N] [PATTERN...]   (default status/#)
 *	Show the table whenever it changed (at most twice a second): topic,
 *	seq, value.  -1: show it once the snapshot is in, and exit.
 *	-c N: exit after N updates.
 *   herald-watch [-s SERVER] [-w SECONDS] -x NAME COMMAND VALUE
 *	Publish VALUE on cmd/NAME/COMMAND (the server's clients.publish
 *	must allow it) and wait for herald-producer's answer on
 *	status/NAME/ack.  Exits 0 for "ok", 1 for "error" or no answer.
 *
 * SERVER defaults to $HERALD_SERVER, else 127.0.0.1:7400.
 *
 * Build: cc watch.c $(pkg-config --cflags --libs libherald)
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <herald.h>

struct row {
	char		*topic;
	char		*value;
	uint64_t	 seq;
};

struct watch {
	struct row	*rows;		/* sorted by topic */
	size_t		 n, cap;
	int		 changed;
	uint64_t	 updates;
	int		 subscribed;	/* patterns whose snapshot is in */
	int		 failed;
	int		 connected;	/* HELLO seen at least once */
	/* command mode */
	const char	*cmd_value;
	uint64_t	 cmd_seq;	/* our command's seq, once seen */
	char		 answer[512];
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The row of topic: found, or inserted in order. */
static struct row *
row_for(struct watch *w, const char *topic)
{
	size_t lo = 0, hi = w->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int cmp = strcmp(w->rows[mid].topic, topic);
		if (cmp == 0)
			return &w->rows[mid];
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 64;
		if ((w->rows = realloc(w->rows, w->cap * sizeof(*w->rows))) ==
		    NULL) {
			perror("herald-watch");
			exit(1);
		}
	}
	memmove(&w->rows[lo + 1], &w->rows[lo], (w->n - lo) *
	    sizeof(*w->rows));
	w->n++;
	w->rows[lo].topic = strdup(topic);
	w->rows[lo].value = NULL;
	w->rows[lo].seq = 0;
	return &w->rows[lo];
}

/* A value or message: the topic's newest value now (never an older). */
static void
on_value(struct herald_client *c, const struct herald_msg *m, void *arg)
{
	struct watch *w = arg;
	struct row *r = row_for(w, m->topic);

	if (r->value != NULL && r->seq >= m->seq)
		return;
	free(r->value);
	r->value = strdup(m->payload);
	r->seq = m->seq;
	w->changed = 1;
	w->updates++;
}

static void
print_table(const struct watch *w, int clear)
{
	int width = 5;

	for (size_t i = 0; i < w->n; i++)
		if ((int)strlen(w->rows[i].topic) > width)
			width = strlen(w->rows[i].topic);
	if (clear)
		fputs("\033[H\033[2J", stdout);
	printf("%-*s %10s  %s\n", width, "TOPIC", "SEQ", "VALUE");
	for (size_t i = 0; i < w->n; i++)
		printf("%-*s %10" PRIu64 "  %s\n", width, w->rows[i].topic,
		    w->rows[i].seq, w->rows[i].value);
	if (!clear)
		putchar('\n');
	fflush(stdout);
}

static void
on_event(struct herald_client *c, const struct herald_event *ev, void *arg)
{
	struct watch *w = arg;

	switch (ev->type) {
	case HERALD_EVENT_SUBSCRIBED:
		w->subscribed++;
		break;
	case HERALD_EVENT_ERROR:
		w->failed = 1;
		/* FALLTHROUGH */
	case HERALD_EVENT_GAP:
	case HERALD_EVENT_RESET:
		fprintf(stderr, "herald-watch: %s\n", ev->text);
		break;
	case HERALD_EVENT_DISCONNECTED:
		if (w->connected)	/* herald_open reports the first */
			fprintf(stderr, "herald-watch: %s%s\n", ev->text,
			    ev->retry_ms >= 0 ? "; reconnecting" : "");
		break;
	case HERALD_EVENT_CONNECTED:
		w->connected = 1;
		break;
	default:	/* HERALD_EVENT_AUTH, and kinds added later */
		break;
	}
}

/* Table mode. */
static int
watch(struct herald_client *c, struct watch *w, int npatterns, int once,
    uint64_t count)
{
	int tty = isatty(1);
	uint64_t shown_at = 0;

	for (;;) {
		int rc = herald_run_once(c, 500);
		if (rc != HERALD_OK || w->failed) {
			fprintf(stderr, "herald-watch: %s\n", herald_errmsg(c));
			return 1;
		}
		int complete = w->subscribed >= npatterns;
		if (once && complete) {
			print_table(w, 0);
			return 0;
		}
		if (complete && w->changed && now_ms() - shown_at >= 500) {
			print_table(w, tty);
			w->changed = 0;
			shown_at = now_ms();
		}
		if (count != 0 && w->updates >= count) {
			print_table(w, 0);
			return 0;
		}
	}
}

/* Command mode: our command as the server numbered it, then the ack. */
static void
on_cmd_echo(struct herald_client *c, const struct herald_msg *m, void *arg)
{
	struct watch *w = arg;

	if (!m->is_value && w->cmd_seq == 0 &&
	    strcmp(m->payload, w->cmd_value) == 0)
		w->cmd_seq = m->seq;
}

static void
on_ack(struct herald_client *c, const struct herald_msg *m, void *arg)
{
	struct watch *w = arg;
	char verdict[16];
	uint64_t seq;

	if (m->is_value || w->cmd_seq == 0 ||
	    sscanf(m->payload, "%15s %" SCNu64, verdict, &seq) != 2 ||
	    seq != w->cmd_seq)
		return;
	snprintf(w->answer, sizeof(w->answer), "%s", m->payload);
}

static int
command(struct herald_client *c, struct watch *w, const char *name,
    const char *cmd, const char *value, int wait_ms)
{
	char topic[256], ack_topic[256];
	int rc;

	snprintf(topic, sizeof(topic), "cmd/%s/%s", name, cmd);
	snprintf(ack_topic, sizeof(ack_topic), "status/%s/ack", name);
	w->cmd_value = value;
	if ((rc = herald_sub(c, topic, on_cmd_echo, w)) != HERALD_OK ||
	    (rc = herald_sub(c, ack_topic, on_ack, w)) != HERALD_OK ||
	    (rc = herald_wait(c)) != HERALD_OK ||
	    (rc = herald_pub(c, topic, value, strlen(value))) != HERALD_OK ||
	    (rc = herald_sync(c, NULL)) != HERALD_OK) {
		fprintf(stderr, "herald-watch: %s\n", herald_errmsg(c));
		return 1;
	}
	uint64_t deadline = now_ms() + wait_ms;
	while (w->answer[0] == '\0' && now_ms() < deadline)
		if (herald_run_once(c, (int)(deadline - now_ms())) != 0)
			break;
	if (w->answer[0] == '\0') {
		fprintf(stderr, "herald-watch: no answer from %s\n", name);
		return 1;
	}
	printf("%s\n", w->answer);
	return strncmp(w->answer, "ok ", 3) == 0 ? 0 : 1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: herald-watch [-s SERVER] [-1] [-c N] "
	    "[PATTERN...]\n"
	    "       herald-watch [-s SERVER] [-w SECONDS] -x NAME COMMAND "
	    "VALUE\n");
	exit(2);
}

static void
watch_free(struct watch *w)
{
	for (size_t i = 0; i < w->n; i++) {
		free(w->rows[i].topic);
		free(w->rows[i].value);
	}
	free(w->rows);
}

int
main(int argc, char **argv)
{
	struct watch w = { 0 };
	struct herald_options o;
	struct herald_client *c;
	const char *server = getenv("HERALD_SERVER");
	int ch, once = 0, cmd_mode = 0, wait_ms = 5000, rc;
	uint64_t count = 0;

	while ((ch = getopt(argc, argv, "s:1c:xw:")) != -1) {
		switch (ch) {
		case 's': server = optarg; break;
		case '1': once = 1; break;
		case 'c': count = strtoull(optarg, NULL, 10); break;
		case 'x': cmd_mode = 1; break;
		case 'w': wait_ms = (int)(atof(optarg) * 1000); break;
		default: usage();
		}
	}
	if (cmd_mode && argc - optind != 3)
		usage();
	if (server == NULL || *server == '\0')
		server = "127.0.0.1:7400";
	herald_options_init(&o);
	o.on_event = on_event;
	o.event_arg = &w;
	if ((c = herald_new(server, &o)) == NULL)
		return 1;
	if (herald_open(c) != HERALD_OK) {
		fprintf(stderr, "herald-watch: %s\n", herald_errmsg(c));
		herald_close(c);
		return 1;
	}
	if (cmd_mode) {
		rc = command(c, &w, argv[optind], argv[optind + 1],
		    argv[optind + 2], wait_ms);
		herald_close(c);
		watch_free(&w);
		return rc;
	}
	const char *dflt[] = { "status/#" };
	char **patterns = optind < argc ? argv + optind : (char **)dflt;
	int n = optind < argc ? argc - optind : 1;
	for (int i = 0; i < n; i++) {
		if (herald_sub(c, patterns[i], on_value, &w) != HERALD_OK) {
			fprintf(stderr, "herald-watch: %s\n", herald_errmsg(c));
			herald_close(c);
			return 2;
		}
	}
	rc = watch(c, &w, n, once, count);
	herald_close(c);
	watch_free(&w);
	return rc;
}
