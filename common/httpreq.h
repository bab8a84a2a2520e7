/*
 * An HTTP/1.x request head, as the HTTP listener takes it (heraldd(8),
 * "HTTP listener"): parsed by http-parser, checked strictly (only GET or
 * HEAD, no body, no folded or repeated framing headers, no repeated
 * header it uses), and its query decoded.
 * Pure code, no I/O, so that it can be fuzzed alone.
 */
#ifndef HERALD_HTTPREQ_H
#define HERALD_HTTPREQ_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_PARAM_MAX		4096	/* a decoded query name or value:
					 * a token (JWT_TOKEN_MAX) fits */

/* What http_request_parse found. */
enum http_result {
	HTTP_MORE = 0,		/* no end of the head yet */
	HTTP_DONE = 1,		/* a whole head, checked */
	HTTP_BAD = 400,		/* malformed, or a smuggling attempt */
	HTTP_NOT_FOUND = 404,
	HTTP_NOT_ALLOWED = 405,	/* a method other than GET and HEAD */
	HTTP_TOO_LARGE = 413,	/* it announces a body */
	HTTP_HEAD_TOO_LARGE = 431 /* longer than the limit, unfinished */
};

/* The parts of a head the listener uses; pointers into the buffer. */
struct http_request {
	const char	*path, *query;	/* query NULL: none */
	size_t		 path_len, query_len;
	const char	*authorization;	/* NULL: not sent */
	size_t		 authorization_len;
	const char	*last_event_id;	/* NULL: not sent */
	size_t		 last_event_id_len;
	/* A WebSocket handshake's (GET /ws); NULL: not sent */
	const char	*upgrade, *connection;
	size_t		 upgrade_len, connection_len;
	const char	*ws_key, *ws_version, *ws_protocol;
	size_t		 ws_key_len, ws_version_len, ws_protocol_len;
	size_t		 head_len;	/* bytes of the head, CRLFCRLF too */
	int		 head;		/* a HEAD: answered without a body */
};

/*
 * Parse the head at the start of buf[0..len), at most max_head bytes of
 * it.  HTTP_DONE fills req; HTTP_MORE asks for more bytes; anything else
 * is the status the request is refused with.
 */
enum http_result http_request_parse(const char *buf, size_t len,
	    size_t max_head, struct http_request *req);

/*
 * The next name=value of a query (*q, *qlen: what is left of it, moved
 * on), each percent-decoded into name and value (HTTP_PARAM_MAX bytes
 * each).  '+' stays '+' (it is a pattern's wildcard).  Returns 1 with a
 * parameter, 0 at the end, -1 for a bad one (a bad escape, a NUL, one
 * too long).
 */
int	http_query_next(const char **q, size_t *qlen, char *name, size_t *nlen,
	    char *value, size_t *vlen);

#endif /* HERALD_HTTPREQ_H */
