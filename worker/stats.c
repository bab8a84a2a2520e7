/*
 * The figures STATS shows (herald-protocol(7)), and the same figures in
 * Prometheus's text format for GET /metrics (heraldd(8)): one table
 * says each one's name, where it comes from, whether it is a counter or
 * a gauge, and what it means.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "worker.h"

enum stat_source {
	SRC_COUNTER,	/* a bus counter, summed over the processes */
	SRC_HEAD_SEQ,
	SRC_UPTIME,
	SRC_RETAINED,
	SRC_RETAINED_DROPPED,
	SRC_CLUSTER	/* the producer's own block, shown only on a cluster
			 * node (cluster.redis set): see producer/cluster.h */
};

struct stat_def {
	const char	*name;		/* in STATS */
	enum stat_source src;
	enum bus_counter ctr;		/* SRC_COUNTER */
	int		 gauge;		/* else a counter: it only grows */
	int		 per_worker;	/* workers count it: /metrics also
					 * shows each worker's */
	const char	*metric;	/* its Prometheus name, after herald_
					 * (NULL: the STATS name) */
	const char	*help;
};

#define C(n, c, pw, h)	{ n, SRC_COUNTER, c, 0, pw, NULL, h }
#define CL(n, c, g, h)	{ n, SRC_CLUSTER, c, g, 0, NULL, h }

static const struct stat_def stats[] = {
	{ "clients", SRC_COUNTER, CTR_CLIENTS, 1, 1, NULL,
	  "Clients connected now." },
	{ "workers", SRC_COUNTER, CTR_WORKERS, 1, 0, NULL,
	  "Worker processes running." },
	C("msgs_in", CTR_MSGS_IN, 0, "Messages appended to the bus."),
	C("msgs_out", CTR_MSGS_OUT, 1, "MSG lines delivered to clients."),
	C("bytes_out", CTR_BYTES_OUT, 1, "Bytes written to clients."),
	C("gaps", CTR_GAPS, 1, "GAP lines sent."),
	C("slow_consumers", CTR_SLOW_CONSUMERS, 1,
	  "Clients conflated or disconnected as slow."),
	C("connections", CTR_CONNECTIONS, 1, "Connections accepted."),
	C("rejected_full", CTR_REJECTED_FULL, 1,
	  "Connections refused: clients.max or clients.per_address."),
	C("bad_lines", CTR_BAD_LINES, 1, "Lines answered with a bad error."),
	C("errors_closed", CTR_ERRORS_CLOSED, 1,
	  "Clients closed after too many bad lines."),
	C("lines_too_long", CTR_LINES_TOO_LONG, 1,
	  "Lines longer than their listener's limit."),
	C("forbidden", CTR_FORBIDDEN, 1, "Commands refused: forbidden."),
	C("too_many_subs", CTR_TOO_MANY_SUBS, 1,
	  "SUBs refused: clients.max_subs."),
	C("busy", CTR_BUSY, 1, "Commands refused: the producer was busy."),
	C("idle_closed", CTR_IDLE_CLOSED, 1,
	  "Clients closed by clients.idle_timeout."),
	C("rejected_per_address", CTR_REJECTED_ADDRESS, 1,
	  "Connections refused: clients.per_address."),
	C("payloads_too_large", CTR_PAYLOAD_TOO_LARGE, 1,
	  "PUBs refused: max_payload."),
	C("conn_errors", CTR_CONN_ERRORS, 1,
	  "Connections lost to a socket error."),
	C("tls_handshakes", CTR_TLS_HANDSHAKES, 1, "TLS handshakes done."),
	C("tls_resumed", CTR_TLS_RESUMED, 1,
	  "TLS handshakes that resumed a session."),
	C("tls_handshake_failures", CTR_TLS_HANDSHAKE_FAILURES, 1,
	  "TLS handshakes that failed."),
	C("tls_handshake_timeouts", CTR_TLS_HANDSHAKE_TIMEOUTS, 1,
	  "TLS handshakes not done in time."),
	C("worker_lapped", CTR_WORKER_LAPPED, 1,
	  "Times a worker was lapped by the bus ring."),
	C("bye_unread", CTR_BYE_UNREAD, 1,
	  "Clients closed that did not read their BYE."),
	C("eof_unread", CTR_EOF_UNREAD, 1,
	  "Clients closed after their input ended, owed output unread."),
	C("accept_paused", CTR_ACCEPT_PAUSED, 1,
	  "Times accepting paused for want of descriptors."),
	C("heartbeats", CTR_HEARTBEATS, 1, "HB lines sent."),
	C("producer_reconnects", CTR_RECONNECTS, 1,
	  "Reconnections of workers to the producer."),
	C("spawn_failures", CTR_SPAWN_FAILED, 0,
	  "Child processes the master could not start."),
	C("per_address_untracked", CTR_ADDR_UNTRACKED, 1,
	  "Connections admitted without clients.per_address."),
	C("auth_failures", CTR_AUTH_FAILURES, 1, "Failed authentications."),
	C("auth_expired", CTR_AUTH_EXPIRED, 1,
	  "Connections closed as their token expired."),
	C("auth_hashes", CTR_AUTH_HASHES, 1, "Password hashes computed."),
	C("http_requests", CTR_HTTP_REQUESTS, 1, "HTTP requests answered."),
	C("http_bad_requests", CTR_HTTP_BAD_REQUESTS, 1,
	  "HTTP requests refused as bad (4xx but 401)."),
	C("ws_protocol_errors", CTR_WS_PROTOCOL_ERRORS, 1,
	  "WebSocket connections closed for a frame the framing refuses."),
	C("upgrades", CTR_UPGRADES, 0,
	  "Upgrades to a new binary completed (heraldd(8), Upgrades)."),
	C("upgrade_rollbacks", CTR_UPGRADE_ROLLBACKS, 0,
	  "Upgrades rolled back: the old binary carried on."),
	C("clients_handed_over", CTR_HANDED_OVER, 1,
	  "Connections handed to the new binary's workers in an upgrade."),
	C("clients_adopted", CTR_ADOPTED, 1,
	  "Connections taken over from the old binary's workers."),
	C("handover_restarts", CTR_HANDOVER_RESTARTS, 1,
	  "Connections told BYE restart in an upgrade instead of moving."),
	{ "head_seq", SRC_HEAD_SEQ, 0, 1, 0, NULL,
	  "Seq of the newest message in the bus." },
	{ "uptime", SRC_UPTIME, 0, 1, 0, "uptime_seconds",
	  "Seconds since the server started." },
	{ "retained", SRC_RETAINED, 0, 1, 0, NULL,
	  "Topics with a retained value." },
	{ "retained_dropped", SRC_RETAINED_DROPPED, 0, 0, 0, NULL,
	  "Values not retained: the table or its memory was full." },
	CL("cluster_role", CTR_CLUSTER_ROLE, 1,
	  "The node's part in the cluster (heraldd(8), CLUSTER)."),
	CL("cluster_down", CTR_CLUSTER_DOWN, 1, "1 while Redis is unreachable."),
	CL("cluster_reconnects", CTR_CLUSTER_RECONNECTS, 0,
	  "Times the link to Redis came back."),
	CL("cluster_full", CTR_CLUSTER_FULL, 1,
	  "1 while cluster.hold is full: PUBs are refused busy."),
	CL("cluster_lag", CTR_CLUSTER_LAG, 1,
	  "Records Redis has that this node's bus has not."),
	CL("cluster_lag_ms", CTR_CLUSTER_LAG_MS, 1,
	  "Age of the newest record read, while behind."),
	CL("cluster_epoch", CTR_CLUSTER_EPOCH, 1,
	  "The epoch of Redis's data (an id)."),
};

#define NSTATS	(sizeof(stats) / sizeof(stats[0]))

static uint64_t
stat_value(struct bus *b, const struct stat_def *d)
{
	uint64_t started;
	time_t now;

	switch (d->src) {
	case SRC_COUNTER:
		return bus_counter_sum(b, d->ctr);
	case SRC_HEAD_SEQ:
		return bus_head_seq(b);
	case SRC_UPTIME:
		started = bus_counter_get(b, SLOT_MASTER, CTR_START_TIME);
		now = time(NULL);
		return now > (time_t)started ? now - started : 0;
	case SRC_RETAINED:
		return bus_retained_count(b);
	case SRC_RETAINED_DROPPED:
		return bus_retained_dropped(b);
	case SRC_CLUSTER:
		return bus_counter_get(b, SLOT_PRODUCER, d->ctr);
	}
	return 0;
}

/* 1 if the figure is shown here (a cluster's only on a cluster node). */
static int
stat_shown(const struct worker *w, const struct stat_def *d)
{
	return d->src != SRC_CLUSTER || w->cfg->cluster_redis[0] != '\0';
}

/* STATS: one STAT line per figure, then +OK STATS. */
void
stats_reply(struct client *c)
{
	for (size_t i = 0; i < NSTATS; i++)
		if (stat_shown(c->w, &stats[i]))
			client_replyf(c, "STAT %s %llu\n", stats[i].name,
			    (unsigned long long)stat_value(c->w->bus,
			    &stats[i]));
	client_reply(c, "+OK STATS\n", 10);
}

/* One metric family: HELP, TYPE, the sum, then each worker's. */
static void
metric(FILE *f, struct worker *w, const struct stat_def *d)
{
	char name[96];

	if (d->metric != NULL)
		snprintf(name, sizeof(name), "herald_%s", d->metric);
	else
		snprintf(name, sizeof(name), "herald_%s%s", d->name,
		    d->gauge ? "" : "_total");
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, d->help,
	    name, d->gauge ? "gauge" : "counter", name,
	    (unsigned long long)stat_value(w->bus, d));
	if (!d->per_worker)
		return;
	/* Each worker's own figure, as a family of its own: a sum and its
	 * parts in one family would be counted twice by sum(). */
	char *wname = name + sizeof("herald_") - 1;
	fprintf(f, "# HELP herald_worker_%s %s (each worker)\n"
	    "# TYPE herald_worker_%s %s\n", wname, d->help, wname,
	    d->gauge ? "gauge" : "counter");
	for (int i = 1; i <= w->cfg->workers; i++)
		fprintf(f, "herald_worker_%s{worker=\"%d\"} %llu\n", wname, i,
		    (unsigned long long)bus_counter_get(w->bus, SLOT_WORKER(i),
		    d->ctr));
}

/*
 * The figures in Prometheus's text format 0.0.4: every STATS value, a
 * counter's name ending in _total, with each worker's part where workers
 * count it; then the bus ring's use, each worker's loop age and its
 * lag behind the head.  A malloc'ed text (*len bytes), or NULL when
 * memory runs out.
 */
char *
stats_metrics(struct worker *w, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	uint64_t hpos, hseq, tpos, tseq;
	uint64_t now = now_ms() / 1000;

	if (f == NULL)
		return NULL;
	for (size_t i = 0; i < NSTATS; i++)
		if (stat_shown(w, &stats[i]))
			metric(f, w, &stats[i]);
	bus_head(w->bus, &hpos, &hseq);
	bus_tail(w->bus, &tpos, &tseq);
	fprintf(f, "# HELP herald_bus_ring_used_bytes Bytes of the bus ring "
	    "holding messages.\n# TYPE herald_bus_ring_used_bytes gauge\n"
	    "herald_bus_ring_used_bytes %llu\n"
	    "# HELP herald_bus_ring_size_bytes Bytes of the bus ring.\n"
	    "# TYPE herald_bus_ring_size_bytes gauge\n"
	    "herald_bus_ring_size_bytes %llu\n"
	    "# HELP herald_worker_loop_age_seconds Seconds since each worker's "
	    "loop last turned.\n"
	    "# TYPE herald_worker_loop_age_seconds gauge\n",
	    (unsigned long long)(hpos - tpos),
	    (unsigned long long)w->cfg->bus_size);
	for (int i = 1; i <= w->cfg->workers; i++) {
		uint64_t t = bus_counter_get(w->bus, SLOT_WORKER(i),
		    CTR_LOOP_TIME);
		fprintf(f, "herald_worker_loop_age_seconds{worker=\"%d\"} "
		    "%llu\n", i, (unsigned long long)(now > t ? now - t : 0));
	}
	fprintf(f, "# HELP herald_worker_lag_messages Messages in the bus "
	    "each worker has yet to fan out.\n"
	    "# TYPE herald_worker_lag_messages gauge\n");
	for (int i = 1; i <= w->cfg->workers; i++) {
		uint64_t seq = bus_counter_get(w->bus, SLOT_WORKER(i),
		    CTR_FANOUT_SEQ);
		fprintf(f, "herald_worker_lag_messages{worker=\"%d\"} %llu\n",
		    i, (unsigned long long)(hseq > seq ? hseq - seq : 0));
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}
