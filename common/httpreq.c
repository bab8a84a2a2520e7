/*
 * An HTTP request head (httpreq.h).  http-parser does the parsing; this
 * file refuses what the listener does not serve, and what would let a
 * request mean one thing here and another to a proxy in front (request
 * smuggling): a body or its framing headers, a header folded over lines
 * (obs-fold), a repeated Authorization, Last-Event-ID, or header of a
 * WebSocket handshake.  The head is parsed again whole each time more of
 * it arrives (it is at most http.max_header bytes): no parser state
 * lives between reads, and every callback sees its element in one
 * piece.
 */
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "httpreq.h"

/* Which header a field names. */
enum field { F_OTHER, F_AUTHORIZATION, F_LAST_EVENT_ID, F_CONTENT_LENGTH,
    F_TRANSFER_ENCODING, F_WS_UPGRADE, F_WS_CONNECTION, F_WS_KEY, F_WS_VERSION,
    F_WS_PROTOCOL };

struct parse {
	struct http_request	*req;
	enum http_result	 result;	/* a refusal found, or done */
	enum field		 field;
	int			 in_value;	/* the last callback was a
						 * value: another is a fold */
	int			 content_lengths;
	const char		*url;
	size_t			 url_len;
};

static int
on_url(http_parser *p, const char *at, size_t len)
{
	struct parse *s = p->data;

	if (s->url != NULL) {	/* (one execute: never split) */
		s->result = HTTP_BAD;
		return 1;
	}
	s->url = at;
	s->url_len = len;
	return 0;
}

static int
is_tchar(int ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= 'A' && ch <= 'Z') ||
	    (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
	static const struct { const char *name; enum field f; } known[] = {
		{ "authorization", F_AUTHORIZATION },
		{ "last-event-id", F_LAST_EVENT_ID },
		{ "content-length", F_CONTENT_LENGTH },
		{ "transfer-encoding", F_TRANSFER_ENCODING },
		{ "upgrade", F_WS_UPGRADE },
		{ "connection", F_WS_CONNECTION },
		{ "sec-websocket-key", F_WS_KEY },
		{ "sec-websocket-version", F_WS_VERSION },
		{ "sec-websocket-protocol", F_WS_PROTOCOL },
	};
	struct parse *s = p->data;

	/* A name is a token (RFC 9110): "Content-Length :" is not one that
	 * a proxy in front might read as Content-Length and this one not. */
	for (size_t i = 0; i < len; i++)
		if (!is_tchar((unsigned char)at[i])) {
			s->result = HTTP_BAD;
			return 1;
		}
	s->in_value = 0;
	s->field = F_OTHER;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i].name) == len &&
		    strncasecmp(known[i].name, at, len) == 0)
			s->field = known[i].f;
	return 0;
}

/* Keep the value of a header the listener uses; a second one is bad. */
static int
keep(struct parse *s, const char **v, size_t *vlen, const char *at,
    size_t len)
{
	if (*v != NULL) {
		s->result = HTTP_BAD;
		return 1;
	}
	*v = at;
	*vlen = len;
	return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
	struct parse *s = p->data;

	if (s->in_value) {	/* a continuation line: obs-fold */
		s->result = HTTP_BAD;
		return 1;
	}
	s->in_value = 1;
	switch (s->field) {
	case F_AUTHORIZATION:
		return keep(s, &s->req->authorization,
		    &s->req->authorization_len, at, len);
	case F_LAST_EVENT_ID:
		return keep(s, &s->req->last_event_id,
		    &s->req->last_event_id_len, at, len);
	case F_WS_UPGRADE:
		return keep(s, &s->req->upgrade, &s->req->upgrade_len, at,
		    len);
	case F_WS_CONNECTION:
		return keep(s, &s->req->connection, &s->req->connection_len,
		    at, len);
	case F_WS_KEY:
		return keep(s, &s->req->ws_key, &s->req->ws_key_len, at, len);
	case F_WS_VERSION:
		return keep(s, &s->req->ws_version, &s->req->ws_version_len,
		    at, len);
	case F_WS_PROTOCOL:
		return keep(s, &s->req->ws_protocol,
		    &s->req->ws_protocol_len, at, len);
	case F_CONTENT_LENGTH:
		s->content_lengths++;
		return 0;
	case F_TRANSFER_ENCODING:	/* a GET has no body to frame */
		s->result = HTTP_BAD;
		return 1;
	case F_OTHER:
		break;
	}
	return 0;
}

/* The head is whole: is it a request the listener serves? */
static int
on_headers_complete(http_parser *p)
{
	struct parse *s = p->data;
	struct http_parser_url u;

	http_parser_pause(p, 1);	/* what follows is not read */
	if (p->http_major != 1 || s->url == NULL || s->content_lengths > 1) {
		s->result = HTTP_BAD;
		return 0;
	}
	http_parser_url_init(&u);
	if (http_parser_parse_url(s->url, s->url_len, 0, &u) != 0 ||
	    !(u.field_set & (1 << UF_PATH)) ||
	    s->url[u.field_data[UF_PATH].off] != '/') {
		s->result = HTTP_BAD;
		return 0;
	}
	if (p->method != HTTP_GET && p->method != HTTP_HEAD) {
		s->result = HTTP_NOT_ALLOWED;
		return 0;
	}
	if (s->content_lengths == 1 && p->content_length > 0) {
		s->result = HTTP_TOO_LARGE;
		return 0;
	}
	s->req->head = p->method == HTTP_HEAD;
	s->req->path = s->url + u.field_data[UF_PATH].off;
	s->req->path_len = u.field_data[UF_PATH].len;
	if (u.field_set & (1 << UF_QUERY)) {
		s->req->query = s->url + u.field_data[UF_QUERY].off;
		s->req->query_len = u.field_data[UF_QUERY].len;
	}
	s->result = HTTP_DONE;
	return 0;
}

enum http_result
http_request_parse(const char *buf, size_t len, size_t max_head,
    struct http_request *req)
{
	static const http_parser_settings settings = {
		.on_url = on_url,
		.on_header_field = on_header_field,
		.on_header_value = on_header_value,
		.on_headers_complete = on_headers_complete,
	};
	struct parse s = { .req = req, .result = HTTP_MORE };
	http_parser p;
	size_t n = len < max_head ? len : max_head;

	memset(req, 0, sizeof(*req));
	http_parser_init(&p, HTTP_REQUEST);
	p.data = &s;
	http_parser_execute(&p, &settings, buf, n);
	if (s.result != HTTP_MORE)
		return s.result;
	switch (HTTP_PARSER_ERRNO(&p)) {
	case HPE_OK:
		return len >= max_head ? HTTP_HEAD_TOO_LARGE : HTTP_MORE;
	case HPE_HEADER_OVERFLOW:
		return HTTP_HEAD_TOO_LARGE;
	default:
		return HTTP_BAD;
	}
}

static int
hex(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch |= 0x20;
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Percent-decode s[0..len) into out (HTTP_PARAM_MAX); -1 if bad. */
static int
decode(const char *s, size_t len, char *out, size_t *olen)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		int ch = (unsigned char)s[i];
		if (ch == '%') {
			int hi = i + 2 < len ? hex(s[i + 1]) : -1;
			int lo = hi >= 0 ? hex(s[i + 2]) : -1;
			if (lo < 0)
				return -1;
			ch = hi << 4 | lo;
			i += 2;
		}
		if (ch == 0 || o == HTTP_PARAM_MAX)
			return -1;
		out[o++] = (char)ch;
	}
	*olen = o;
	return 0;
}

int
http_query_next(const char **q, size_t *qlen, char *name, size_t *nlen,
    char *value, size_t *vlen)
{
	while (*qlen > 0) {
		const char *p = *q;
		const char *amp = memchr(p, '&', *qlen);
		size_t len = amp != NULL ? (size_t)(amp - p) : *qlen;

		*q += len + (amp != NULL);
		*qlen -= len + (amp != NULL);
		if (len == 0)
			continue;	/* "a=1&&b=2" */
		const char *eq = memchr(p, '=', len);
		size_t k = eq != NULL ? (size_t)(eq - p) : len;
		if (decode(p, k, name, nlen) == -1)
			return -1;
		if (eq == NULL)
			*vlen = 0;
		else if (decode(eq + 1, len - k - 1, value, vlen) == -1)
			return -1;
		return 1;
	}
	return 0;
}
