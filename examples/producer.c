/*
 * herald-producer: publish this machine's status every second, and obey
 * the commands clients publish to it.  An example of libherald in a
 * libevent loop: two clients attached to one event_base (one on the
 * ingest listener to publish, one on the client listener to hear
 * commands), a timer, and signals.
 *
 *   herald-producer [-s SERVER] [-i INGEST] [-n NAME] [-t SECONDS] [-c N]
 *
 * SERVER and INGEST default to $HERALD_SERVER and $HERALD_INGEST, else
 * 127.0.0.1:7400 and 127.0.0.1:7401, as for herald(1); NAME to the host
 * name; -c stops after N rounds of figures.
 *
 * Every interval it publishes, under status/NAME/:
 *   load1 load5 load15  from /proc/loadavg
 *   uptime              seconds the machine has been up
 *   mem_available_kb    from /proc/meminfo
 *   interval            the interval now, in seconds
 *   count               how many times it has published
 *
 * Commands are messages on cmd/NAME/<command> (clients may publish there
 * when the server's clients.publish allows it, e.g. "cmd/#"):
 *   cmd/NAME/interval SECONDS   publish every SECONDS (0.1 to 3600)
 *   cmd/NAME/ping TOKEN         only answer
 * Each is answered on status/NAME/ack with "ok SEQ COMMAND VALUE" or
 * "error SEQ COMMAND REASON", SEQ being the command's own seq.  Only new
 * commands count: the retained one a subscription starts with is old.
 *
 * Build: cc producer.c $(pkg-config --cflags --libs libherald libevent)
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <herald.h>

/* One of the producer's two connections, for its messages. */
struct link {
	const char		*what;		/* "ingest", "commands" */
	int			 lost;		/* said so, not back yet */
};

struct producer {
	char			 name[64];
	struct link		 pub_link, cmd_link;
	struct event_base	*base;
	struct herald_client	*pub;		/* ingest: status out */
	struct herald_client	*cmd;		/* client: commands in */
	struct event		*tick;
	int			 interval_ms;
	uint64_t		 count;
	uint64_t		 max_count;	/* -c: stop after; 0 = never */
};

/* Publish status/NAME/what = value; a full queue only loses this one. */
static void
publish(struct producer *p, const char *what, const char *value)
{
	char topic[256];
	int rc;

	snprintf(topic, sizeof(topic), "status/%s/%s", p->name, what);
	if ((rc = herald_pub(p->pub, topic, value, strlen(value))) != 0)
		fprintf(stderr, "herald-producer: %s: %s\n", topic,
		    herald_errmsg(p->pub));
}

/* The first line of a file, or "" (it is only an example). */
static void
read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	buf[0] = '\0';
	if (f != NULL) {
		if (fgets(buf, len, f) == NULL)
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
}

/* MemAvailable from /proc/meminfo, in kB, or 0. */
static unsigned long
mem_available_kb(void)
{
	char line[256];
	unsigned long kb = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "MemAvailable: %lu kB", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kb;
}

/* Publish one round of figures. */
static void
publish_status(struct producer *p)
{
	char buf[256], load[3][32];
	double up = 0;

	read_line("/proc/loadavg", buf, sizeof(buf));
	if (sscanf(buf, "%31s %31s %31s", load[0], load[1], load[2]) == 3) {
		publish(p, "load1", load[0]);
		publish(p, "load5", load[1]);
		publish(p, "load15", load[2]);
	}
	read_line("/proc/uptime", buf, sizeof(buf));
	if (sscanf(buf, "%lf", &up) == 1) {
		snprintf(buf, sizeof(buf), "%.0f", up);
		publish(p, "uptime", buf);
	}
	snprintf(buf, sizeof(buf), "%lu", mem_available_kb());
	publish(p, "mem_available_kb", buf);
	snprintf(buf, sizeof(buf), "%g", p->interval_ms / 1000.0);
	publish(p, "interval", buf);
	snprintf(buf, sizeof(buf), "%" PRIu64, ++p->count);
	publish(p, "count", buf);
}

/* (Re)arm the timer for the interval. */
static void
arm(struct producer *p)
{
	struct timeval tv = { p->interval_ms / 1000,
	    (p->interval_ms % 1000) * 1000 };

	evtimer_add(p->tick, &tv);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct producer *p = arg;

	publish_status(p);
	if (p->max_count != 0 && p->count >= p->max_count)
		event_base_loopexit(p->base, NULL);
	else
		arm(p);
}

/* Answer a command on status/NAME/ack. */
static void
ack(struct producer *p, int ok, uint64_t seq, const char *cmd,
    const char *text)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "%s %" PRIu64 " %s %s", ok ? "ok" :
	    "error", seq, cmd, text);
	publish(p, "ack", buf);
}

/* cmd/NAME/interval SECONDS */
static void
cmd_interval(struct producer *p, const struct herald_msg *m)
{
	char *end;
	double s = strtod(m->payload, &end);

	if (end == m->payload || *end != '\0' || !(s >= 0.1 && s <= 3600)) {
		ack(p, 0, m->seq, "interval", "expected seconds, 0.1 to 3600");
		return;
	}
	p->interval_ms = (int)(s * 1000 + 0.5);
	arm(p);
	publish_status(p);	/* the new interval shows before the ack */
	ack(p, 1, m->seq, "interval", m->payload);
}

/* A message on cmd/NAME/+: obey it if it is new. */
static void
on_command(struct herald_client *c, const struct herald_msg *m, void *arg)
{
	struct producer *p = arg;
	const char *cmd = strrchr(m->topic, '/') + 1;

	if (m->is_value)
		return;		/* the retained command: already done */
	if (strcmp(cmd, "interval") == 0)
		cmd_interval(p, m);
	else if (strcmp(cmd, "ping") == 0)
		ack(p, 1, m->seq, "ping", m->payload);
	else
		ack(p, 0, m->seq, cmd, "unknown command");
}

/* Say what happens to a connection: it comes back by itself. */
static void
on_event(struct herald_client *c, const struct herald_event *ev, void *arg)
{
	struct link *l = arg;

	switch (ev->type) {
	case HERALD_EVENT_DISCONNECTED:
		if (!l->lost)
			fprintf(stderr, "herald-producer: %s: %s; "
			    "reconnecting\n", l->what, ev->text);
		l->lost = 1;
		break;
	case HERALD_EVENT_CONNECTED:
		if (l->lost)
			fprintf(stderr, "herald-producer: %s: back\n",
			    l->what);
		l->lost = 0;
		break;
	case HERALD_EVENT_ERROR:
	case HERALD_EVENT_GAP:
		fprintf(stderr, "herald-producer: %s: %s\n", l->what,
		    ev->text);
		break;
	default:
		break;
	}
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopexit(arg, NULL);
}

/* A client for addr attached to the loop, connecting. */
static struct herald_client *
client(struct producer *p, const char *addr, struct link *l)
{
	struct herald_options o;
	struct herald_client *c;

	herald_options_init(&o);
	o.on_event = on_event;
	o.event_arg = l;
	if ((c = herald_new(addr, &o)) == NULL ||
	    herald_attach(c, p->base) != HERALD_OK) {
		fprintf(stderr, "herald-producer: out of memory\n");
		exit(1);
	}
	return c;
}

/* An address from the environment, as herald(1) takes it, or dflt. */
static const char *
env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : dflt;
}

static void
die(struct herald_client *c)
{
	fprintf(stderr, "herald-producer: %s\n", herald_errmsg(c));
	exit(1);
}

static void
usage(void)
{
	fprintf(stderr, "usage: herald-producer [-s SERVER] [-i INGEST] "
	    "[-n NAME] [-t SECONDS] [-c COUNT]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct producer p = { .interval_ms = 1000 };
	const char *server = env_or("HERALD_SERVER", "127.0.0.1:7400");
	const char *ingest = env_or("HERALD_INGEST", "127.0.0.1:7401");
	char pattern[128];
	int ch;

	gethostname(p.name, sizeof(p.name) - 1);
	while ((ch = getopt(argc, argv, "s:i:n:t:c:")) != -1) {
		switch (ch) {
		case 's': server = optarg; break;
		case 'i': ingest = optarg; break;
		case 'n': snprintf(p.name, sizeof(p.name), "%s", optarg); break;
		case 't': p.interval_ms = (int)(atof(optarg) * 1000); break;
		case 'c': p.max_count = strtoull(optarg, NULL, 10); break;
		default: usage();
		}
	}
	snprintf(pattern, sizeof(pattern), "cmd/%s/+", p.name);
	if (optind != argc || p.interval_ms < 100 ||
	    !herald_valid_pattern(pattern))
		usage();

	p.base = event_base_new();
	p.pub_link.what = "ingest";
	p.cmd_link.what = "commands";
	p.pub = client(&p, ingest, &p.pub_link);
	p.cmd = client(&p, server, &p.cmd_link);
	p.tick = evtimer_new(p.base, tick_cb, &p);
	struct event *sigint = evsignal_new(p.base, SIGINT, signal_cb, p.base);
	struct event *sigterm = evsignal_new(p.base, SIGTERM, signal_cb,
	    p.base);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	/* Non-blocking opens fail only for an address that does not parse;
	 * a server that is not there yet is retried. */
	if (herald_sub(p.cmd, pattern, on_command, &p) != HERALD_OK ||
	    herald_open(p.cmd) != HERALD_OK)
		die(p.cmd);
	if (herald_open(p.pub) != HERALD_OK)
		die(p.pub);
	publish_status(&p);
	arm(&p);
	event_base_dispatch(p.base);

	/* Out of the loop: make sure the last figures arrived, then go. */
	herald_detach(p.pub);
	if (herald_is_connected(p.pub) && herald_sync(p.pub, NULL) != HERALD_OK)
		fprintf(stderr, "herald-producer: %s\n", herald_errmsg(p.pub));
	herald_close(p.pub);
	herald_close(p.cmd);
	event_free(p.tick);
	event_free(sigint);
	event_free(sigterm);
	event_base_free(p.base);
	return 0;
}
