/*
 * Fuzz target for the line parser and the error formatter.  Every input
 * is one line (without its LF).  It is parsed with several max_payload
 * values, the results are checked against the rules of herald-protocol(7), and
 * the "-ERR" line for it is formatted into buffers of several sizes.
 *
 * libFuzzer: clang -fsanitize=fuzzer,address,undefined -Icommon \
 *     common/topic.c common/protocol.c tests/fuzz/fuzz_protocol.c
 * Replay without libFuzzer: link with standalone.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "topic.h"

#define CHECK(x)	do { if (!(x)) check_failed(#x, __LINE__); } while (0)

static const size_t max_payloads[] = { 0, 1, 16, 65536 };

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_failed(const char *what, int line)
{
	fprintf(stderr, "fuzz_protocol.c:%d: check failed: %s\n", line, what);
	abort();
}

/* 1 if p[0..len) lies inside in[0..size). */
static int
inside(const char *in, size_t size, const char *p, size_t len)
{
	if (len == 0 && p == NULL)
		return 1;
	return p >= in && p <= in + size && len <= (size_t)(in + size - p);
}

static int
only_seps(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return 1;
}

/* The payload's fault, written again from the rules. */
static enum proto_err
ref_payload_err(const char *p, size_t len, size_t max)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] == '\0' || p[i] == '\r')
			return PERR_BAD_PAYLOAD;
	return len > max ? PERR_PAYLOAD_TOO_LARGE : PERR_NONE;
}

/* 1 if the since word w (after the pattern) spells v in decimal. */
static int
since_spells(const char *w, size_t len, uint64_t v)
{
	char dec[21];
	int n = snprintf(dec, sizeof(dec), "%llu", (unsigned long long)v);

	while (len > 1 && w[0] == '0') {
		w++;
		len--;
	}
	return (size_t)n == len && memcmp(w, dec, len) == 0;
}

/* Invariants of one parse, alone. */
static void
check_cmd(const char *in, size_t size, size_t max, enum proto_err e,
    const struct cmd *c)
{
	CHECK(e <= PERR_BUSY);
	CHECK(e == PERR_NONE || e == PERR_SYNTAX ||
	    e == PERR_UNKNOWN_COMMAND || e == PERR_BAD_TOPIC ||
	    e == PERR_BAD_PATTERN);
	CHECK(inside(in, size, c->verb_str, c->verb_len));
	CHECK(inside(in, size, c->name, c->name_len));
	CHECK(inside(in, size, c->payload, c->payload_len));
	CHECK(c->payload_len <= size);
	CHECK((e == PERR_NONE && c->verb == CMD_NONE) == only_seps(in, size));
	if (!only_seps(in, size))
		CHECK(c->verb_len > 0 && memchr(c->verb_str, ' ',
		    c->verb_len) == NULL && memchr(c->verb_str, '\t',
		    c->verb_len) == NULL);
	if (e == PERR_UNKNOWN_COMMAND)
		CHECK(c->verb == CMD_NONE);
	if (e == PERR_BAD_TOPIC)
		CHECK(c->verb == CMD_GET || c->verb == CMD_PUB);
	if (e == PERR_BAD_PATTERN)
		CHECK(c->verb == CMD_SUB || c->verb == CMD_UNSUB);
	if (c->has_since)
		CHECK(c->verb == CMD_SUB);
	if (c->verb != CMD_PUB || e != PERR_NONE)
		CHECK(c->payload_err == PERR_NONE);
	if (e != PERR_NONE)
		return;
	switch (c->verb) {
	case CMD_SUB:
	case CMD_UNSUB:
		CHECK(pattern_valid(c->name, c->name_len));
		break;
	case CMD_GET:
		CHECK(topic_valid(c->name, c->name_len));
		break;
	case CMD_PUB:
		CHECK(topic_valid(c->name, c->name_len));
		CHECK(c->payload_len >= 1);
		CHECK(c->payload + c->payload_len == in + size);
		CHECK(c->payload == c->name + c->name_len + 1);
		CHECK(c->payload[-1] == ' ' || c->payload[-1] == '\t');
		CHECK(c->payload_err == ref_payload_err(c->payload,
		    c->payload_len, max));
		break;
	case CMD_PING:
		CHECK(memchr(c->payload, ' ', c->payload_len) == NULL);
		CHECK(memchr(c->payload, '\t', c->payload_len) == NULL);
		break;
	default:
		CHECK(c->name_len == 0 && c->payload_len == 0);
		break;
	}
	if (c->has_since) {
		const char *w = c->name + c->name_len;
		const char *end = in + size;
		size_t len = 0;

		while (w < end && (*w == ' ' || *w == '\t'))
			w++;
		while (w + len < end && w[len] != ' ' && w[len] != '\t')
			len++;
		CHECK(len >= 1 && len <= 20);
		CHECK(since_spells(w, len, c->since));
	}
}

/* Two parses of one line differ at most in the payload's size fault. */
static void
check_same(const struct cmd *a, enum proto_err ea, const struct cmd *b,
    enum proto_err eb)
{
	CHECK(ea == eb);
	CHECK(a->verb == b->verb && a->verb_str == b->verb_str &&
	    a->verb_len == b->verb_len);
	CHECK(a->name == b->name && a->name_len == b->name_len);
	CHECK(a->payload == b->payload && a->payload_len == b->payload_len);
	CHECK(a->has_since == b->has_since && a->since == b->since);
	if (a->payload_err == PERR_BAD_PAYLOAD ||
	    b->payload_err == PERR_BAD_PAYLOAD)
		CHECK(a->payload_err == b->payload_err);
}

/* The value of a lowercase hex digit, or -1. */
static int
hexval(char h)
{
	if (h >= '0' && h <= '9')
		return h - '0';
	if (h >= 'a' && h <= 'f')
		return h - 'a' + 10;
	return -1;
}

/* Turn \xNN escapes back into bytes; returns the length, or -1. */
static long
unescape(const char *s, size_t len, char *out)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (s[i] != '\\') {
			out[n++] = s[i];
			continue;
		}
		if (len - i < 4 || s[i + 1] != 'x' || hexval(s[i + 2]) < 0 ||
		    hexval(s[i + 3]) < 0)
			return -1;
		out[n++] = (char)(hexval(s[i + 2]) * 16 + hexval(s[i + 3]));
		i += 3;
	}
	return (long)n;
}

/*
 * Format "-ERR" for e with detail d into a heap buffer of exactly buflen
 * bytes, and check it: LF-terminated, NUL after, printable, and its
 * detail a prefix of the full escape of d (all of it if it fit).
 */
static void
check_format(size_t buflen, enum proto_err e, const char *d, size_t dlen)
{
	char *buf = malloc(buflen), *full = malloc(4 * dlen + 1);
	const char *code = proto_err_code(e);
	size_t n, flen, head, i;

	CHECK(buf != NULL && full != NULL);
	n = proto_format_err(buf, buflen, e, d, dlen);
	CHECK(n < buflen);
	CHECK(buf[n] == '\0');
	CHECK(n >= 1 && buf[n - 1] == '\n');
	for (i = 0; i + 1 < n; i++)
		CHECK(buf[i] >= 0x20 && buf[i] <= 0x7e);
	head = 5 + strlen(code);		/* "-ERR " and the code */
	CHECK(n >= head + 1 && memcmp(buf, "-ERR ", 5) == 0 &&
	    memcmp(buf + 5, code, strlen(code)) == 0);
	flen = proto_escape(full, 4 * dlen + 1, d, dlen);
	CHECK(flen >= dlen && flen <= 4 * dlen);
	if (n == head + 1) {
		/* No detail: none given, or not even one character fit. */
		CHECK(dlen == 0 || buflen < head + 3 + (full[0] == '\\'
		    ? 4 : 1));
	} else {
		size_t got = n - head - 2;

		CHECK(buf[head] == ' ');
		CHECK(got <= flen && memcmp(buf + head + 1, full, got) == 0);
		/* Cut only where the next character would not fit. */
		if (got < flen)
			CHECK(got + (full[got] == '\\' ? 4 : 1) >
			    buflen - 2 - head - 1);
		else
			CHECK(got == flen);
	}
	{
		char *back = malloc(flen + 1);
		long bl;

		CHECK(back != NULL);
		bl = unescape(full, flen, back);
		CHECK(bl == (long)dlen && memcmp(back, d, dlen) == 0);
		free(back);
	}
	free(full);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct cmd c[sizeof(max_payloads) / sizeof(max_payloads[0])];
	enum proto_err e[sizeof(max_payloads) / sizeof(max_payloads[0])];
	enum proto_err fe;
	const char *d = "";
	size_t i, dlen = 0;

	for (i = 0; i < sizeof(max_payloads) / sizeof(max_payloads[0]); i++) {
		e[i] = proto_parse(in, size, max_payloads[i], &c[i]);
		check_cmd(in, size, max_payloads[i], e[i], &c[i]);
		if (i > 0)
			check_same(&c[0], e[0], &c[i], e[i]);
	}
	/* The error and detail the server would send (see protocol.c). */
	fe = e[0] != PERR_NONE ? e[0] : c[0].payload_err != PERR_NONE ?
	    c[0].payload_err : PERR_FORBIDDEN;
	if (fe == PERR_SYNTAX || fe == PERR_UNKNOWN_COMMAND) {
		d = c[0].verb_str;
		dlen = c[0].verb_len;
	} else if (c[0].name != NULL) {
		d = c[0].name;
		dlen = c[0].name_len;
	}
	check_format(64, fe, d, dlen);
	check_format(64, PERR_PAYLOAD_TOO_LARGE, in, size);
	check_format(24 + size % 64, PERR_NOT_SUBSCRIBED, in, size);
	check_format(4096, PERR_BAD_PAYLOAD, in, size);
	return 0;
}
