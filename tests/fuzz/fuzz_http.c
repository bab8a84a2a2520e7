/*
 * Fuzz target for the HTTP listener's request parsing (common/httpreq.c):
 * any bytes are parsed as a request head, with a limit taken from the
 * first byte; a head taken must point inside the input, and its query,
 * like the whole input read as a query, must decode into parameters no
 * longer than what they were written as, without a NUL.
 *
 * libFuzzer: tests/fuzz/run-libfuzzer http SECONDS
 * Replay without libFuzzer: link with standalone.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
inside(const char *p, size_t len, const char *buf, size_t size)
{
	if (p != NULL && (p < buf || p + len > buf + size))
		abort();
}

static void
check_query(const char *q, size_t qlen)
{
	static char name[HTTP_PARAM_MAX], value[HTTP_PARAM_MAX];
	size_t nlen, vlen, left = qlen;
	int r;

	while ((r = http_query_next(&q, &left, name, &nlen, value,
	    &vlen)) == 1) {
		if (nlen > qlen || vlen > qlen || nlen > HTTP_PARAM_MAX ||
		    vlen > HTTP_PARAM_MAX || memchr(name, 0, nlen) != NULL ||
		    memchr(value, 0, vlen) != NULL)
			abort();
	}
	if (r != 0 && r != -1)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct http_request req;
	size_t max = size > 0 ? 64 + (size_t)data[0] * 64 : 8192;
	enum http_result r = http_request_parse(buf, size, max, &req);

	switch (r) {
	case HTTP_DONE:
		if (req.path == NULL || req.path_len == 0)
			abort();
		inside(req.path, req.path_len, buf, size);
		inside(req.query, req.query_len, buf, size);
		inside(req.authorization, req.authorization_len, buf, size);
		inside(req.last_event_id, req.last_event_id_len, buf, size);
		if (req.query != NULL)
			check_query(req.query, req.query_len);
		break;
	case HTTP_MORE:
		if (size >= max)
			abort();	/* past the limit: 431, not more */
		break;
	case HTTP_BAD: case HTTP_NOT_FOUND: case HTTP_NOT_ALLOWED:
	case HTTP_TOO_LARGE: case HTTP_HEAD_TOO_LARGE:
		break;
	default:
		abort();
	}
	check_query(buf, size);
	return 0;
}
