/*
 * The HTTP listener (heraldd(8), "HTTP listener"): a connection reads one
 * request (httpreq.c parses it) and is answered: GET / (the status
 * page), GET /metrics and GET /healthz with a response, then closed (a
 * HEAD with the same head and no body); GET /events by becoming a
 * client like any other whose lines are server-sent events (sse.c); GET
 * /ws by becoming a client of the line protocol in WebSocket frames
 * (ws.c).  A request that is refused is answered with its status and
 * closed, and counted (http_bad_requests), and nothing else changes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "httpreq.h"
#include "topic.h"
#include "worker.h"

static const char *
status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	}
	return "Error";
}

/* Queue a whole response (a text body; none to a HEAD), and close once
 * it is written. */
static void
respond(struct client *c, int status, const char *type, const char *extra,
    const char *body, size_t len)
{
	char head[512];
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\nContent-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n", status,
	    status_text(status), type, len, extra);

	client_reply_framed(c, head, n);
	if (!c->head_only)
		client_reply_framed(c, body, len);
	client_end(c);
	bus_counter_add(c->w->bus, c->w->slot, CTR_HTTP_REQUESTS, 1);
}

/* A request refused: its status with a short reason, counted and logged
 * at most once a second (a 401 was, where it was found). */
static void
refuse(struct client *c, int status, const char *why)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "%d %s\n", status,
	    status_text(status));

	if (status != 401)
		worker_limit(c->w, CTR_HTTP_BAD_REQUESTS, 0, "client %u: HTTP "
		    "request refused with %d: %s", c->id, status, why);
	/* (a HEAD refused 405 was one of a stream: GET only) */
	const char *extra = status == 401 ? "WWW-Authenticate: Bearer\r\n" :
	    status == 426 ? "Upgrade: websocket\r\n"
	    "Sec-WebSocket-Version: 13\r\n" : status != 405 ? "" :
	    c->head_only ? "Allow: GET\r\n" : "Allow: GET, HEAD\r\n";

	respond(c, status, "text/plain; charset=utf-8", extra, body, n);
}

/* A connection refused for clients.max or clients.per_address. */
void
http_refuse_full(int fd)
{
	static const char r[] = "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Type: text/plain\r\nContent-Length: 12\r\n"
	    "Connection: close\r\n\r\nserver-full\n";

	(void)!write(fd, r, sizeof(r) - 1);
}

static void
get_metrics(struct client *c)
{
	size_t len;
	char *text = stats_metrics(c->w, &len);

	if (text == NULL) {
		refuse(c, 500, "out of memory for /metrics");
		return;
	}
	respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", "", text,
	    len);
	free(text);
}

/* Why the server is not healthy, or NULL: every worker and the producer
 * turn their loops (they write the second they did into the bus), and
 * the master counts every worker it should have. */
static const char *
unhealthy(struct worker *w, char *buf, size_t len)
{
	uint64_t now = now_ms() / 1000;
	uint64_t live = bus_counter_get(w->bus, SLOT_MASTER, CTR_WORKERS);

	if (live < (uint64_t)w->cfg->workers) {
		snprintf(buf, len, "%llu of %d workers running",
		    (unsigned long long)live, w->cfg->workers);
		return buf;
	}
	uint64_t t = bus_counter_get(w->bus, SLOT_PRODUCER, CTR_LOOP_TIME);
	if (t + WORKER_STALL_SEC <= now)
		return "the producer is not running: the bus takes no message";
	for (int i = 1; i <= w->cfg->workers; i++) {
		t = bus_counter_get(w->bus, SLOT_WORKER(i), CTR_LOOP_TIME);
		if (t + WORKER_STALL_SEC <= now) {
			snprintf(buf, len, "worker %d has not run its loop for "
			    "%llu s", i, (unsigned long long)(now - t));
			return buf;
		}
	}
	return NULL;
}

static void
get_healthz(struct client *c)
{
	char buf[128], body[160];
	const char *why = unhealthy(c->w, buf, sizeof(buf));
	int n = snprintf(body, sizeof(body), "%s\n", why != NULL ? why : "ok");

	respond(c, why != NULL ? 503 : 200, "text/plain; charset=utf-8", "",
	    body, n);
}

/*
 * GET /: the status page.  Its script and style are inline (one file,
 * nothing to fetch), so the policy allows inline ones and nothing from
 * elsewhere; the page talks to /ws on the same origin only.
 */
static void
get_page(struct client *c)
{
	static const char extra[] = "Content-Security-Policy: "
	    "default-src 'self'; script-src 'unsafe-inline'; "
	    "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
	    "form-action 'none'; frame-ancestors 'none'\r\n"
	    "X-Content-Type-Options: nosniff\r\n";

	respond(c, 200, "text/html; charset=utf-8", extra,
	    (const char *)http_page, http_page_len);
}

/* What GET /events asks for (its query and Last-Event-ID). */
struct events_req {
	char		**patterns;
	size_t		 *lens;
	int		  n;
	int		  has_since;
	uint64_t	  since;
	char		 *token;	/* from ?token= */
	size_t		  token_len;
	char		 *arena;	/* the decoded patterns and token */
};

/* /events: at least one sub; a Last-Event-ID (a browser's reconnect)
 * wins over since.  0, or the status to refuse it with. */
static int
events_since(const struct http_request *req, struct events_req *e,
    const char **why)
{
	if (e->n == 0) {
		*why = "no sub";
		return 400;
	}
	if (req->last_event_id == NULL || req->last_event_id_len == 0)
		return 0;
	if (proto_parse_seq(req->last_event_id, req->last_event_id_len,
	    &e->since) == -1) {
		*why = "Last-Event-ID: not a seq";
		return 400;
	}
	e->has_since = 1;
	return 0;
}

static void
events_free(struct events_req *e)
{
	free(e->patterns);
	free(e->lens);
	free(e->arena);
}

/* Decode the query into e: for /events (events) all of it, else only a
 * token.  Returns 0, or the status to refuse it with (*why says why). */
static int
read_query(struct client *c, const struct http_request *req,
    struct events_req *e, int events, const char **why)
{
	const char *q = req->query;
	size_t qlen = req->query_len, nlen, vlen, used = 0, slots = 1;
	char name[HTTP_PARAM_MAX], value[HTTP_PARAM_MAX];
	int r, max = c->w->cfg->clients_max_subs;

	for (size_t i = 0; i < qlen; i++)	/* a sub= at most each */
		slots += q[i] == '&';
	if (slots > (size_t)max)
		slots = max;
	/* (decoding never makes a value longer than the query held it) */
	e->arena = malloc(qlen + 1);
	e->patterns = calloc(slots, sizeof(*e->patterns));
	e->lens = calloc(slots, sizeof(*e->lens));
	if (e->arena == NULL || e->patterns == NULL || e->lens == NULL) {
		*why = "out of memory";
		return 500;
	}
	while ((r = http_query_next(&q, &qlen, name, &nlen, value,
	    &vlen)) == 1) {
		char *v = e->arena + used;
		int is_token = nlen == 5 && memcmp(name, "token", 5) == 0;
		if (!events && !is_token)
			continue;
		memcpy(v, value, vlen);
		if (nlen == 3 && memcmp(name, "sub", 3) == 0) {
			if (!pattern_valid(value, vlen)) {
				*why = "sub: not a valid pattern";
				return 400;
			}
			int dup = 0;
			for (int i = 0; i < e->n && !dup; i++)
				dup = e->lens[i] == vlen &&
				    memcmp(e->patterns[i], v, vlen) == 0;
			if (dup)
				continue;
			if (e->n == max) {
				*why = "more sub than clients.max_subs";
				return 400;
			}
			e->patterns[e->n] = v;
			e->lens[e->n++] = vlen;
		} else if (nlen == 5 && memcmp(name, "since", 5) == 0) {
			if (e->has_since || proto_parse_seq(value, vlen,
			    &e->since) == -1) {
				*why = "since: not one seq";
				return 400;
			}
			e->has_since = 1;
		} else if (is_token) {
			if (e->token != NULL) {
				*why = "token: twice";
				return 400;
			}
			e->token = v;
			e->token_len = vlen;
		} else {
			continue;	/* not ours (a cache buster): ignored */
		}
		used += vlen;
	}
	if (r == -1) {
		*why = "a bad percent-escape, a NUL, or a value too long";
		return 400;
	}
	return events ? events_since(req, e, why) : 0;
}

/*
 * The token a request carries: "Authorization: Bearer <token>" or
 * ?token=, not both.  Returns 0 (*tok NULL: none), or a status.
 */
static int
request_token(const struct http_request *req, const struct events_req *e,
    const char **tok, size_t *len)
{
	static const char bearer[] = "Bearer ";

	*tok = NULL;
	if (req->authorization != NULL) {
		size_t n = sizeof(bearer) - 1;
		if (e->token != NULL || req->authorization_len <= n ||
		    strncasecmp(req->authorization, bearer, n) != 0)
			return 400;
		*tok = req->authorization + n;
		*len = req->authorization_len - n;
	} else if (e->token != NULL) {
		*tok = e->token;
		*len = e->token_len;
	}
	return 0;
}

/* Authenticate the request as AUTH <token> would.  Returns 0, or a
 * status (401: no details, whatever the cause).  A request without a
 * token where one is required is refused unless it goes on in the line
 * protocol (lines: GET /ws), where AUTH may come later. */
static int
authenticate(struct client *c, const struct http_request *req,
    const struct events_req *e, int lines, const char **why)
{
	const char *tok;
	size_t len;
	int status = request_token(req, e, &tok, &len);

	if (status != 0) {
		*why = "Authorization: not one Bearer token";
		return status;
	}
	if (tok != NULL && authn_http_token(c, tok, len) == -1) {
		*why = "a bad token";
		return c->state == CS_OPEN ? 401 : -1;
	}
	if (authn_required(c) && !lines) {
		*why = "no token, and auth.required";
		/* (counted here: a bad token was, as a failed AUTH) */
		bus_counter_add(c->w->bus, c->w->slot, CTR_HTTP_BAD_REQUESTS,
		    1);
		return 401;
	}
	return 0;
}

/* GET /events: the response's head, then the client is an SSE one,
 * subscribed (command_subs). */
static void
get_events(struct client *c, const struct events_req *e)
{
	static const char head[] = "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/event-stream\r\nCache-Control: no-store\r\n"
	    "X-Accel-Buffering: no\r\nConnection: close\r\n\r\n";

	for (int i = 0; i < e->n; i++)
		if (!authn_may_read(c, e->patterns[i], e->lens[i], 1)) {
			worker_limit(c->w, CTR_FORBIDDEN, 0, "client %u: "
			    "/events sub=%.*s refused: not within the "
			    "connection's read patterns", c->id,
			    (int)e->lens[i], e->patterns[i]);
			respond(c, 403, "text/plain; charset=utf-8", "",
			    "403 Forbidden\n", 14);
			return;
		}
	client_reply_framed(c, head, sizeof(head) - 1);
	bus_counter_add(c->w->bus, c->w->slot, CTR_HTTP_REQUESTS, 1);
	c->framing = FRAME_SSE;
	timers_soon(c);		/* heartbeats now, not the request's timeout */
	command_subs(c, e->patterns, e->lens, e->n, e->has_since, e->since);
}

/* A whole request: route it. */
static void
serve(struct client *c, const struct http_request *req)
{
	struct events_req e = { 0 };
	const char *why = "?";
	int events = req->path_len == 7 && memcmp(req->path, "/events", 7) == 0;
	int ws = req->path_len == 3 && memcmp(req->path, "/ws", 3) == 0;
	int status;

	c->head_only = req->head;
	if (req->head && (events || ws)) {
		why = "HEAD of a stream";
		status = 405;
	} else
		status = read_query(c, req, &e, events, &why);
	if (status == 0)
		status = authenticate(c, req, &e, ws, &why);
	if (status == 0 && ws)
		status = ws_upgrade(c, req, &why);
	if (status == -1 || (status == 0 && ws))
		;	/* closed, or upgraded */
	else if (status != 0)
		refuse(c, status, why);
	else if (events)
		get_events(c, &e);
	else if (req->path_len == 1)	/* "/" */
		get_page(c);
	else if (req->path_len == 8 && memcmp(req->path, "/metrics", 8) == 0)
		get_metrics(c);
	else if (req->path_len == 8 && memcmp(req->path, "/healthz", 8) == 0)
		get_healthz(c);
	else
		refuse(c, 404, "no such path");
	events_free(&e);
}

/* The request did not come within http_request_timeout (timers.c; an
 * HTTP client has had no output before its answer, so last_out is its
 * accept). */
void
http_timeout(struct client *c)
{
	refuse(c, 408, "no whole request within http_request_timeout");
	client_flush(c);
}

/*
 * Bytes from an HTTP client: the request so far (the caller keeps them
 * while it is unfinished: returns 0), answered once whole (1).  What an
 * SSE client sends is dropped.
 */
int
http_input(struct client *c, const char *data, size_t len)
{
	struct http_request req;
	enum http_result r;

	if (c->framing != FRAME_HTTP)
		return 1;
	r = http_request_parse(data, len, c->w->cfg->http_max_header, &req);
	switch (r) {
	case HTTP_MORE:
		return 0;
	case HTTP_DONE:
		serve(c, &req);
		return 1;
	case HTTP_BAD:
		refuse(c, r, "malformed, or a smuggling attempt");
		return 1;
	case HTTP_HEAD_TOO_LARGE:
		refuse(c, r, "head longer than http_max_header");
		return 1;
	default:
		refuse(c, r, "not a GET without a body");
		return 1;
	}
}
