/*
 * herald(1)'s formatting and argument parsing: numbers, durations, JSON
 * strings, messages, and what each STATS figure means.  No I/O but to the
 * FILE given.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Parse a decimal unsigned 64-bit number; 0 on success, -1 if not one. */
int
fmt_parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* Parse seconds ("2", "0.5") into ms, 1 ms .. 1 day; 0 or -1. */
int
fmt_parse_seconds(const char *s, int *ms)
{
	char *end;

	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0.001) ||
	    v > 86400)
		return -1;
	*ms = (int)(v * 1000 + 0.5);
	return 0;
}

/* Parse --format: plain, json (and table if allowed); 0 or -1. */
int
fmt_parse_format(const char *s, int allow_table, enum cli_format *out)
{
	if (strcmp(s, "plain") == 0)
		*out = FMT_PLAIN;
	else if (strcmp(s, "json") == 0)
		*out = FMT_JSON;
	else if (allow_table && strcmp(s, "table") == 0)
		*out = FMT_TABLE;
	else
		return -1;
	return 0;
}

/* Length of the valid UTF-8 sequence at s (max len bytes), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t len)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	if (n > len)
		return 0;
	cp = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * Write s as a JSON string.  Valid UTF-8 is kept; a byte that is not
 * part of it is written as the character of that code (\u00NN), as if
 * the text were Latin-1.
 */
void
fmt_json_string(FILE *f, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;

	putc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char b = u[i];
		size_t n;
		if (b == '"' || b == '\\') {
			putc('\\', f);
			putc(b, f);
		} else if (b == '\t') {
			fputs("\\t", f);
		} else if (b < 0x20 || b == 0x7f) {
			fprintf(f, "\\u%04x", b);
		} else if (b < 0x80) {
			putc(b, f);
		} else if ((n = utf8_len(u + i, len - i)) > 0) {
			fwrite(u + i, 1, n, f);
			i += n - 1;
		} else {
			fprintf(f, "\\u%04x", b);
		}
	}
	putc('"', f);
}

/* One message: "TOPIC PAYLOAD", or a JSON object. */
void
fmt_msg(FILE *f, enum cli_format fmt, const struct herald_msg *m)
{
	if (fmt != FMT_JSON) {
		fputs(m->topic, f);
		putc(' ', f);
		fwrite(m->payload, 1, m->payload_len, f);
		putc('\n', f);
		return;
	}
	fprintf(f, "{\"type\":\"%s\",\"topic\":", m->is_value ? "val" : "msg");
	fmt_json_string(f, m->topic, strlen(m->topic));
	fprintf(f, ",\"seq\":%" PRIu64 ",\"payload\":", m->seq);
	fmt_json_string(f, m->payload, m->payload_len);
	fputs("}\n", f);
}

/* "3d 04:05:06" or "04:05:06". */
void
fmt_duration(char *buf, size_t len, uint64_t s)
{
	uint64_t d = s / 86400;

	s %= 86400;
	if (d > 0)
		snprintf(buf, len, "%" PRIu64 "d %02u:%02u:%02u", d,
		    (unsigned)(s / 3600), (unsigned)(s / 60 % 60),
		    (unsigned)(s % 60));
	else
		snprintf(buf, len, "%02u:%02u:%02u", (unsigned)(s / 3600),
		    (unsigned)(s / 60 % 60), (unsigned)(s % 60));
}

/* A rate, short: "0", "12.5", "1234", "12.3k", "4.56M". */
void
fmt_rate(char *buf, size_t len, double r)
{
	if (r < 0.05)
		snprintf(buf, len, "0");
	else if (r < 100)
		snprintf(buf, len, "%.1f", r);
	else if (r < 10000)
		snprintf(buf, len, "%.0f", r);
	else if (r < 1e7)
		snprintf(buf, len, "%.1fk", r / 1e3);
	else
		snprintf(buf, len, "%.2fM", r / 1e6);
}

/* What the STATS figures mean (herald-protocol(7)); NULL if unknown. */
const char *
fmt_stat_help(const char *name)
{
	static const struct { const char *name, *help; } h[] = {
		{ "clients", "clients connected now" },
		{ "workers", "worker processes" },
		{ "msgs_in", "messages accepted into the bus" },
		{ "msgs_out", "messages sent to clients" },
		{ "bytes_out", "bytes sent to clients" },
		{ "gaps", "GAPs sent (messages clients missed)" },
		{ "slow_consumers", "times a client fell too far behind" },
		{ "connections", "connections accepted" },
		{ "rejected_full", "connections refused: server full" },
		{ "bad_lines", "bad lines from clients" },
		{ "errors_closed", "clients closed for too many errors" },
		{ "lines_too_long", "lines over max_line" },
		{ "forbidden", "PUBs refused by clients.publish" },
		{ "too_many_subs", "SUBs over clients.max_subs" },
		{ "busy", "commands answered busy" },
		{ "idle_closed", "clients closed for idling" },
		{ "rejected_per_address", "of those refused: per address" },
		{ "payloads_too_large", "PUBs over max_payload" },
		{ "conn_errors", "connections lost: reset or timed out" },
		{ "tls_handshakes", "TLS handshakes done" },
		{ "tls_resumed", "of which: TLS sessions resumed" },
		{ "tls_handshake_failures", "connections closed: TLS "
		    "handshake failed" },
		{ "tls_handshake_timeouts", "connections closed: TLS "
		    "handshake too slow" },
		{ "worker_lapped", "times a worker was lapped by the ring" },
		{ "bye_unread", "clients closed: BYE not read in 5 s" },
		{ "eof_unread", "clients closed: at EOF, answers stuck 5 s" },
		{ "accept_paused", "times accepting paused (no fds)" },
		{ "heartbeats", "HB lines sent" },
		{ "producer_reconnects", "times workers reconnected to the "
		    "producer" },
		{ "spawn_failures", "times a process could not be started" },
		{ "per_address_untracked", "connections admitted without "
		    "clients.per_address (address table full)" },
		{ "head_seq", "newest seq in the bus" },
		{ "uptime", "seconds since the daemon started" },
		{ "retained", "topics with a retained value" },
		{ "retained_dropped", "values the retained table could not "
		    "keep" },
		/* a cluster node's (heraldd(8), CLUSTER) */
		{ "cluster_role", "1 in step, 2 catching up, 3 cut off from "
		    "Redis" },
		{ "cluster_down", "1 while Redis cannot be reached" },
		{ "cluster_reconnects", "times the link to Redis came back" },
		{ "cluster_full", "1 while PUBs are refused: cluster.hold "
		    "full" },
		{ "cluster_lag", "records Redis has that this node has not" },
		{ "cluster_lag_ms", "age of the newest record read, while "
		    "behind" },
		{ "cluster_epoch", "id of Redis's data (changes if it lost "
		    "it)" },
	};

	for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++)
		if (strcmp(h[i].name, name) == 0)
			return h[i].help;
	return NULL;
}
