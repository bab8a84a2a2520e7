/*
 * WebSocket (herald-protocol(7), "OTHER FRAMINGS"): GET /ws with the
 * subprotocol herald.v1 upgrades an HTTP connection (RFC 6455 section
 * 4.2), and the connection then speaks the line protocol inside text
 * frames, both ways.  wsframe.c reads the client's frames into the bytes
 * of lines that client.c reads as any client's; the server's lines are
 * framed by framing.c.  A frame the framing refuses closes the
 * connection with its close code, counted (ws_protocol_errors).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "httpreq.h"
#include "worker.h"
#include "wsframe.h"

#define WS_SUBPROTOCOL		"herald.v1"

/* RFC 6455 section 1.3: what the key is hashed with. */
#define WS_GUID			"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* A key: base64 of 16 bytes; its accept: base64 of a SHA-1. */
#define WS_KEY_LEN		24
#define WS_ACCEPT_LEN		28

/* 1 if the comma-separated list s[0..len) holds the token tok (in any
 * case). */
static int
has_token(const char *s, size_t len, const char *tok)
{
	size_t tlen = strlen(tok);
	const char *end = s + len;

	while (s < end) {
		while (s < end && (*s == ' ' || *s == '\t' || *s == ','))
			s++;
		const char *e = s;
		while (e < end && *e != ',' && *e != ' ' && *e != '\t')
			e++;
		if ((size_t)(e - s) == tlen && strncasecmp(s, tok, tlen) == 0)
			return 1;
		s = e;
	}
	return 0;
}

/* The Sec-WebSocket-Accept of a key (WS_ACCEPT_LEN + 1 bytes), or -1
 * for a key that is not base64 of 16 bytes. */
static int
accept_of(const char *key, size_t len, char *accept)
{
	unsigned char raw[WS_KEY_LEN], md[EVP_MAX_MD_SIZE];
	char in[WS_KEY_LEN + sizeof(WS_GUID)];
	unsigned mdlen;

	/* (EVP_DecodeBlock counts the padding's bytes: 16 + 2) */
	if (len != WS_KEY_LEN || memcmp(key + len - 2, "==", 2) != 0 ||
	    EVP_DecodeBlock(raw, (const unsigned char *)key, len) != 18)
		return -1;
	memcpy(in, key, len);
	memcpy(in + len, WS_GUID, sizeof(WS_GUID) - 1);
	if (!EVP_Digest(in, len + sizeof(WS_GUID) - 1, md, &mdlen,
	    EVP_sha1(), NULL))
		return -1;
	EVP_EncodeBlock((unsigned char *)accept, md, mdlen);
	return 0;
}

/*
 * GET /ws: check the handshake, answer 101, and the client speaks the
 * line protocol in frames from now on, greeted with HELLO.  Returns 0,
 * or the status to refuse the request with (*why says why).
 */
int
ws_upgrade(struct client *c, const struct http_request *req,
    const char **why)
{
	char accept[WS_ACCEPT_LEN + 1], head[256];
	struct worker *w = c->w;

	if (req->upgrade == NULL ||
	    !has_token(req->upgrade, req->upgrade_len, "websocket")) {
		*why = "/ws without Upgrade: websocket";
		return 426;
	}
	if (req->ws_version == NULL || req->ws_version_len != 2 ||
	    memcmp(req->ws_version, "13", 2) != 0) {
		*why = "Sec-WebSocket-Version: not 13";
		return 426;
	}
	if (req->connection == NULL ||
	    !has_token(req->connection, req->connection_len, "upgrade")) {
		*why = "/ws without Connection: Upgrade";
		return 400;
	}
	if (req->ws_key == NULL ||
	    accept_of(req->ws_key, req->ws_key_len, accept) == -1) {
		*why = "Sec-WebSocket-Key: not base64 of 16 bytes";
		return 400;
	}
	if (req->ws_protocol == NULL || !has_token(req->ws_protocol,
	    req->ws_protocol_len, WS_SUBPROTOCOL)) {
		*why = "Sec-WebSocket-Protocol: no " WS_SUBPROTOCOL;
		return 400;
	}
	if (ws_frame_init() == -1) {
		*why = "out of memory";
		return 500;
	}
	int n = snprintf(head, sizeof(head), "HTTP/1.1 101 Switching "
	    "Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: "
	    WS_SUBPROTOCOL "\r\n\r\n", accept);
	client_reply_framed(c, head, n);
	bus_counter_add(w->bus, w->slot, CTR_HTTP_REQUESTS, 1);
	c->framing = FRAME_WS;
	timers_soon(c);		/* heartbeats now, not the request's timeout */
	client_replyf(c, "HELLO herald/1 %llu%s\n",
	    (unsigned long long)w->head_seq, authn_required(c) ? " auth" : "");
	return 0;
}

/*
 * Bytes from a WS client: its frames read (a ping answered), and the
 * bytes of lines they carry left at the start of buf (returns how
 * many).  *close: 0, or the close code the connection ends with once
 * those lines are run (ws_close).
 */
size_t
ws_input(struct client *c, char *buf, size_t len, int *close)
{
	struct client_io *io = client_io(c);
	size_t out = 0, plen;
	const char *pong;

	*close = 0;
	if (io == NULL || (io->ws == NULL && (io->ws =
	    ws_reader_new(c->w->cfg->clients_max_line)) == NULL)) {
		log_warnx("client %u: out of memory for its frames", c->id);
		client_kill(c);
		return 0;
	}
	*close = ws_read(io->ws, buf, len, &out);
	/* (not inside a line being framed: the pong waits for the next
	 * read) */
	if (io->sse_from == io->out_len &&
	    (pong = ws_reader_pong(io->ws, &plen)) != NULL) {
		char f[WS_CONTROL_MAX + WS_HEADER_MAX];
		client_reply_framed(c, f, ws_frame(f, WS_OP_PONG, pong, plen));
	}
	if (*close != 0 && *close != WS_CLOSE_NORMAL)
		worker_limit(c->w, CTR_WS_PROTOCOL_ERRORS, 0, "client %u: "
		    "WebSocket: %s: closing with %d", c->id,
		    *close == WS_CLOSE_UNSUPPORTED ? "a binary frame" :
		    *close == WS_CLOSE_TOO_BIG ? "a frame, message or line "
		    "longer than clients.max_line" : "a frame against the "
		    "protocol (unmasked, reserved bits, bad opcode or "
		    "fragments)", *close);
	if (c->state != CS_DEAD && ws_reader_idle(c->io->ws))
		ws_forget(c);
	return out;
}

/* Send a close frame with code, then close once it is written. */
void
ws_close(struct client *c, int code)
{
	char f[2 + WS_HEADER_MAX];

	if (c->state != CS_OPEN)
		return;
	client_reply_framed(c, f, ws_close_frame(f, code));
	client_end(c);
}

/* Free the client's frame reader (a new one reads its next frame). */
void
ws_forget(struct client *c)
{
	if (c->io != NULL && c->io->ws != NULL) {
		ws_reader_free(c->io->ws);
		c->io->ws = NULL;
	}
}
