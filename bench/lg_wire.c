/*
 * The four protocols the load generator speaks, as pure encoders and
 * decoders: herald's line protocol (herald-protocol(7)), MQTT 3.1.1 at QoS 0,
 * Redis RESP pub/sub and the NATS text protocol.  No I/O here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loadgen.h"

static const char *proto_names[] = { "herald", "mqtt", "redis", "nats" };

/* The name of a protocol, as the options spell it. */
const char *
wire_proto_name(enum lg_proto p)
{
	return proto_names[p];
}

/* Parse a protocol name ("mosquitto" is taken for mqtt); 0 or -1. */
int
wire_proto_parse(const char *s, enum lg_proto *p)
{
	size_t i;

	if (strcmp(s, "mosquitto") == 0)
		s = "mqtt";
	for (i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++)
		if (strcmp(s, proto_names[i]) == 0) {
			*p = (enum lg_proto)i;
			return 0;
		}
	return -1;
}

/* Write the name of topic number t, or of the idle subscribers' topic if t
 * is negative (NATS separates tokens with dots). */
size_t
wire_topic(enum lg_proto p, char *out, size_t cap, int t)
{
	int n = t < 0 ? snprintf(out, cap, p == PROTO_NATS ? "bench.idle" :
	    "bench/idle") :
	    snprintf(out, cap, p == PROTO_NATS ? "bench.%d" : "bench/%d", t);

	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* Append an MQTT remaining length; returns the bytes written. */
static size_t
mqtt_varint(unsigned char *out, size_t v)
{
	size_t n = 0;

	do {
		out[n] = v % 128;
		v /= 128;
		if (v > 0)
			out[n] |= 128;
		n++;
	} while (v > 0 && n < 4);
	return n;
}

/* Build an MQTT packet: type byte, remaining length, then body. */
static size_t
mqtt_packet(char *out, size_t cap, unsigned char type, const char *body,
    size_t blen)
{
	unsigned char hdr[5];
	size_t h;

	hdr[0] = type;
	h = 1 + mqtt_varint(hdr + 1, blen);
	if (h + blen > cap)
		return 0;
	memcpy(out, hdr, h);
	memcpy(out + h, body, blen);
	return h + blen;
}

/*
 * What a connection sends first, before its subscription: the MQTT CONNECT
 * (clean session, keep-alive off, a unique client id) or the NATS CONNECT.
 * herald and Redis need nothing.  Returns the bytes written, 0 for none.
 */
size_t
wire_connect(enum lg_proto p, char *out, size_t cap, uint32_t id)
{
	char body[64];
	int n;

	switch (p) {
	case PROTO_MQTT:
		memcpy(body, "\0\4MQTT\4\2\0\0", 10);
		n = snprintf(body + 12, sizeof(body) - 12, "lg%u", id);
		body[10] = 0;
		body[11] = (char)n;
		return mqtt_packet(out, cap, 0x10, body, 12 + (size_t)n);
	case PROTO_NATS:
		n = snprintf(out, cap, "CONNECT {\"verbose\":false,"
		    "\"pedantic\":false,\"echo\":false}\r\n");
		return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
	default:
		return 0;
	}
}

/*
 * A subscription to topic.  herald resumes with `SUB topic since` when
 * resume is set; NATS adds a PING so that the PONG confirms the SUB.
 */
size_t
wire_subscribe(enum lg_proto p, char *out, size_t cap, const char *topic,
    uint32_t sid, int resume, uint64_t since)
{
	char body[300];
	size_t tl = strlen(topic);
	uint16_t pid;
	int n = -1;

	switch (p) {
	case PROTO_HERALD:
		if (resume)
			n = snprintf(out, cap, "SUB %s %llu\n", topic,
			    (unsigned long long)since);
		else
			n = snprintf(out, cap, "SUB %s\n", topic);
		break;
	case PROTO_MQTT:
		if (tl > 255)
			return 0;
		pid = (uint16_t)(sid % 65535 + 1);	/* packet id, never 0 */
		body[0] = (char)(pid >> 8);
		body[1] = (char)(pid & 0xff);
		body[2] = 0;
		body[3] = (char)tl;
		memcpy(body + 4, topic, tl);
		body[4 + tl] = 0;		/* QoS 0 */
		return mqtt_packet(out, cap, 0x82, body, 5 + tl);
	case PROTO_REDIS:
		n = snprintf(out, cap, "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n",
		    tl, topic);
		break;
	case PROTO_NATS:
		n = snprintf(out, cap, "SUB %s %u\r\nPING\r\n", topic, sid);
		break;
	}
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* One publication of payload to topic; 0 if it does not fit in cap. */
size_t
wire_publish(enum lg_proto p, char *out, size_t cap, const char *topic,
    const char *payload, size_t plen)
{
	size_t tl = strlen(topic), h;
	unsigned char hdr[8];
	int n = -1;

	switch (p) {
	case PROTO_HERALD:
		n = snprintf(out, cap, "PUB %s ", topic);
		break;
	case PROTO_MQTT:
		hdr[0] = 0x30;
		h = 1 + mqtt_varint(hdr + 1, 2 + tl + plen);
		if (h + 2 + tl + plen > cap)
			return 0;
		memcpy(out, hdr, h);
		out[h] = (char)(tl >> 8);
		out[h + 1] = (char)(tl & 0xff);
		memcpy(out + h + 2, topic, tl);
		memcpy(out + h + 2 + tl, payload, plen);
		return h + 2 + tl + plen;
	case PROTO_REDIS:
		n = snprintf(out, cap, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n"
		    "$%zu\r\n", tl, topic, plen);
		break;
	case PROTO_NATS:
		n = snprintf(out, cap, "PUB %s %zu\r\n", topic, plen);
		break;
	}
	if (n < 0 || (size_t)n + plen + 2 > cap)
		return 0;
	memcpy(out + n, payload, plen);
	if (p == PROTO_HERALD) {
		out[n + plen] = '\n';
		return (size_t)n + plen + 1;
	}
	memcpy(out + n + plen, "\r\n", 2);
	return (size_t)n + plen + 2;
}

/* The answer to a server's PING (NATS); 0 for the other protocols. */
size_t
wire_pong(enum lg_proto p, char *out, size_t cap)
{
	if (p != PROTO_NATS || cap < 6)
		return 0;
	memcpy(out, "PONG\r\n", 6);
	return 6;
}

/* Fill a payload of size bytes: the send time, then 'x' up to size. */
void
wire_payload(char *out, size_t size, uint64_t ts)
{
	char d[LG_TS_DIGITS + 1];

	snprintf(d, sizeof(d), "%0*llu", LG_TS_DIGITS, (unsigned long long)ts);
	memcpy(out, d, LG_TS_DIGITS);
	memset(out + LG_TS_DIGITS, 'x', size - LG_TS_DIGITS);
}

/* Read the send time back from a payload; 0, or -1 if it has none. */
int
wire_payload_ts(const char *p, size_t len, uint64_t *ts)
{
	uint64_t v = 0;
	size_t i;

	if (len < LG_TS_DIGITS)
		return -1;
	for (i = 0; i < LG_TS_DIGITS; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*ts = v;
	return 0;
}

/* Parse a decimal number at *s, moving *s past it. */
static uint64_t
num(const char **s, const char *end)
{
	uint64_t v = 0;

	while (*s < end && **s >= '0' && **s <= '9')
		v = v * 10 + (uint64_t)(*(*s)++ - '0');
	return v;
}

/* herald: one LF-terminated line (herald-protocol(7)). */
static long
parse_herald(const char *buf, size_t len, struct wire_ev *ev)
{
	const char *nl = memchr(buf, '\n', len), *p, *end, *sp;

	if (nl == NULL)
		return len > LG_MAX_FRAME ? -1 : 0;
	end = nl;
	if (end > buf && end[-1] == '\r')
		end--;
	ev->text = buf;
	ev->tlen = (size_t)(end - buf);
	if ((ev->tlen > 4 && memcmp(buf, "MSG ", 4) == 0) ||
	    (ev->tlen > 4 && memcmp(buf, "VAL ", 4) == 0)) {
		ev->type = buf[0] == 'M' ? EV_MSG : EV_VAL;
		sp = memchr(buf + 4, ' ', (size_t)(end - buf - 4));
		if (sp == NULL)
			return -1;
		p = sp + 1;
		ev->seq = num(&p, end);
		if (p >= end || *p != ' ')
			return -1;
		ev->payload = p + 1;
		ev->plen = (size_t)(end - p - 1);
	} else if (ev->tlen > 7 && memcmp(buf, "+OK SUB", 7) == 0) {
		ev->type = EV_SUBACK;
		p = end;
		while (p > buf && p[-1] >= '0' && p[-1] <= '9')
			p--;
		ev->seq = num(&p, end);
	} else if (ev->tlen > 4 && memcmp(buf, "GAP ", 4) == 0) {
		ev->type = EV_GAP;
		p = buf + 4;
		ev->seq = num(&p, end);
		p++;
		ev->seq2 = num(&p, end);
	} else if (buf[0] == '-')
		ev->type = EV_ERR;
	else if (ev->tlen >= 3 && memcmp(buf, "BYE", 3) == 0)
		ev->type = EV_BYE;
	else
		ev->type = EV_NONE;
	return nl - buf + 1;
}

/* MQTT: one control packet. */
static long
parse_mqtt(const char *buf, size_t len, struct wire_ev *ev)
{
	const unsigned char *u = (const unsigned char *)buf;
	size_t rem = 0, mul = 1, i = 1, tl, total;
	int type;

	for (;;) {
		if (i >= len)
			return 0;
		rem += (u[i] & 127) * mul;
		mul *= 128;
		if ((u[i++] & 128) == 0)
			break;
		if (i > 4)
			return -1;
	}
	total = i + rem;
	if (total > LG_MAX_FRAME)
		return -1;
	if (len < total)
		return 0;
	type = u[0] >> 4;
	ev->type = EV_NONE;
	ev->text = "mqtt: refused";
	ev->tlen = strlen(ev->text);
	if (type == 2 && rem >= 2 && u[i + 1] != 0)		/* CONNACK */
		ev->type = EV_ERR;
	else if (type == 9)					/* SUBACK */
		ev->type = rem >= 3 && u[i + 2] == 0x80 ? EV_ERR : EV_SUBACK;
	else if (type == 3) {					/* PUBLISH */
		if (rem < 2)
			return -1;
		tl = (size_t)u[i] << 8 | u[i + 1];
		i += 2 + tl + (((u[0] >> 1) & 3) ? 2 : 0);
		if (i > total)
			return -1;
		ev->type = EV_MSG;
		ev->payload = buf + i;
		ev->plen = total - i;
	}
	return (long)total;
}

/* RESP: one element at *off: 1 done, 0 incomplete, -1 bad. */
static int
resp_elem(const char *buf, size_t len, size_t *off, const char **s, size_t *n)
{
	const char *p = buf + *off, *end = buf + len, *nl;
	uint64_t blen;

	if (p >= end)
		return 0;
	nl = memchr(p, '\n', (size_t)(end - p));
	if (nl == NULL)
		return (size_t)(end - p) > 64 ? -1 : 0;
	if (*p != '$') {
		*s = p + 1;
		*n = (size_t)(nl - p - 2);
		*off = (size_t)(nl + 1 - buf);
		return 1;
	}
	p++;
	blen = num(&p, nl);
	if (blen > LG_MAX_FRAME)
		return -1;
	if ((size_t)(end - (nl + 1)) < blen + 2)
		return 0;
	*s = nl + 1;
	*n = blen;
	*off = (size_t)(nl + 1 - buf) + blen + 2;
	return 1;
}

/* Redis: a reply (a pub/sub push is an array of three or four elements). */
static long
parse_redis(const char *buf, size_t len, struct wire_ev *ev)
{
	const char *nl = memchr(buf, '\n', len), *p, *s[4];
	size_t off, n[4];
	uint64_t count, i;
	int r;

	if (nl == NULL)
		return len > 64 ? -1 : 0;
	ev->type = EV_NONE;
	ev->text = buf;
	ev->tlen = (size_t)(nl - buf);
	if (buf[0] != '*') {
		if (buf[0] == '-')
			ev->type = EV_ERR;
		return nl - buf + 1;
	}
	p = buf + 1;
	count = num(&p, nl);
	if (count > 4)
		return -1;
	off = (size_t)(nl + 1 - buf);
	for (i = 0; i < count; i++)
		if ((r = resp_elem(buf, len, &off, &s[i], &n[i])) <= 0)
			return r;
	if (count == 3 && n[0] == 7 && memcmp(s[0], "message", 7) == 0) {
		ev->type = EV_MSG;
		ev->payload = s[2];
		ev->plen = n[2];
	} else if (count == 4 && n[0] == 8 && memcmp(s[0], "pmessage", 8) == 0) {
		ev->type = EV_MSG;
		ev->payload = s[3];
		ev->plen = n[3];
	} else if (count >= 1 && n[0] == 9 && memcmp(s[0], "subscribe", 9) == 0)
		ev->type = EV_SUBACK;
	return (long)off;
}

/* NATS: one control line, with its payload for MSG. */
static long
parse_nats(const char *buf, size_t len, struct wire_ev *ev)
{
	const char *nl = memchr(buf, '\n', len), *end, *p;
	uint64_t bytes;
	size_t hl;

	if (nl == NULL)
		return len > 4096 ? -1 : 0;
	end = nl > buf && nl[-1] == '\r' ? nl - 1 : nl;
	hl = (size_t)(nl - buf + 1);
	ev->type = EV_NONE;
	ev->text = buf;
	ev->tlen = (size_t)(end - buf);
	if (ev->tlen > 4 && strncasecmp(buf, "MSG ", 4) == 0) {
		p = end;
		while (p > buf && p[-1] >= '0' && p[-1] <= '9')
			p--;
		bytes = num(&p, end);
		if (bytes > LG_MAX_FRAME)
			return -1;
		if (len < hl + bytes + 2)
			return 0;
		ev->type = EV_MSG;
		ev->payload = nl + 1;
		ev->plen = bytes;
		return (long)(hl + bytes + 2);
	}
	if (ev->tlen == 4 && strncasecmp(buf, "PING", 4) == 0)
		ev->type = EV_PING;
	else if (ev->tlen == 4 && strncasecmp(buf, "PONG", 4) == 0)
		ev->type = EV_SUBACK;
	else if (buf[0] == '-')
		ev->type = EV_ERR;
	return (long)hl;
}

/*
 * Decode the first frame in buf[0..len).  Returns the bytes it takes, 0 if
 * it is not complete yet, -1 if the input is not the protocol.
 */
long
wire_parse(enum lg_proto p, const char *buf, size_t len, struct wire_ev *ev)
{
	if (len == 0)
		return 0;
	switch (p) {
	case PROTO_HERALD:
		return parse_herald(buf, len, ev);
	case PROTO_MQTT:
		return parse_mqtt(buf, len, ev);
	case PROTO_REDIS:
		return parse_redis(buf, len, ev);
	case PROTO_NATS:
		return parse_nats(buf, len, ev);
	}
	return -1;
}

/*
 * herald's lines as server-sent events (herald-protocol(7), "OTHER
 * FRAMINGS"): "event: VERB", "data: the rest of the line", maybe "id:",
 * then an empty line.  Decodes the first event in buf[0..len) as
 * wire_parse does a line.
 */
long
wire_parse_sse(const char *buf, size_t len, struct wire_ev *ev)
{
	const char *end = memmem(buf, len, "\n\n", 2), *p, *nl, *ename = NULL;
	const char *data = NULL, *dend = NULL, *sp;
	size_t elen = 0;

	if (end == NULL)
		return len > LG_MAX_FRAME ? -1 : 0;
	for (p = buf; p <= end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end + 1 - p));
		if ((size_t)(nl - p) > 7 && memcmp(p, "event: ", 7) == 0) {
			ename = p + 7;
			elen = (size_t)(nl - ename);
		} else if ((size_t)(nl - p) >= 6 && memcmp(p, "data: ", 6) == 0) {
			data = p + 6;
			dend = nl;
		}
	}
	ev->type = EV_NONE;
	ev->text = data != NULL ? data : buf;
	ev->tlen = data != NULL ? (size_t)(dend - data) : 0;
	if (ename == NULL || data == NULL)
		return end - buf + 2;
	if (elen == 3 && memcmp(ename, "msg", 3) == 0) {
		/* data: topic seq payload */
		if ((sp = memchr(data, ' ', ev->tlen)) == NULL)
			return -1;
		p = sp + 1;
		ev->seq = num(&p, dend);
		if (p >= dend || *p != ' ')
			return -1;
		ev->type = EV_MSG;
		ev->payload = p + 1;
		ev->plen = (size_t)(dend - p - 1);
	} else if (elen == 2 && memcmp(ename, "ok", 2) == 0 &&
	    ev->tlen > 4 && memcmp(data, "SUB ", 4) == 0) {
		ev->type = EV_SUBACK;
		p = dend;
		while (p > data && p[-1] >= '0' && p[-1] <= '9')
			p--;
		ev->seq = num(&p, dend);
	} else if (elen == 3 && memcmp(ename, "val", 3) == 0)
		ev->type = EV_VAL;
	else if (elen == 3 && memcmp(ename, "gap", 3) == 0) {
		ev->type = EV_GAP;		/* data: first last */
		p = data;
		ev->seq = num(&p, dend);
		p++;
		ev->seq2 = num(&p, dend);
	} else if (elen == 3 && memcmp(ename, "err", 3) == 0)
		ev->type = EV_ERR;
	else if (elen == 3 && memcmp(ename, "bye", 3) == 0)
		ev->type = EV_BYE;
	return end - buf + 2;
}
