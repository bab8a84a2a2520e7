/*
 * WebSocket frames (RFC 6455) as GET /ws speaks them (herald-protocol(7),
 * "OTHER FRAMINGS"): wslay reads and writes the frames; this module
 * checks what a server must refuse and turns a client's text frames into
 * the byte stream of lines the line protocol reads.  Pure code, no I/O,
 * so that it can be fuzzed alone.
 */
#ifndef HERALD_WSFRAME_H
#define HERALD_WSFRAME_H

#include <stddef.h>
#include <stdint.h>

/* A server frame's header: 2 bytes, then 8 for a 64-bit length (a
 * server's frames are never masked). */
#define WS_HEADER_MAX		10

/* A control frame's payload (RFC 6455 section 5.5). */
#define WS_CONTROL_MAX		125

/* Close codes (RFC 6455 section 7.4.1). */
#define WS_CLOSE_NORMAL		1000
#define WS_CLOSE_PROTOCOL	1002	/* unmasked, reserved bits, bad
					 * opcode or fragment sequence */
#define WS_CLOSE_UNSUPPORTED	1003	/* a binary frame */
#define WS_CLOSE_TOO_BIG	1009	/* frame, message or line above
					 * the limit */

/* Opcodes a server sends. */
#define WS_OP_TEXT		0x1
#define WS_OP_CLOSE		0x8
#define WS_OP_PONG		0xa

struct ws_reader;

/* A reader of a client's frames whose frames, messages and lines are at
 * most max bytes each; NULL if memory runs out. */
struct ws_reader *ws_reader_new(size_t max);
void	ws_reader_free(struct ws_reader *);

/* 1 if the reader holds nothing between reads (no part of a frame, a
 * message or a line): it may be freed, and a new one takes over. */
int	ws_reader_idle(const struct ws_reader *);

/*
 * Read buf[0..len) (bytes from the socket), and leave at its start the
 * payload of its text frames, unmasked: *out bytes of lines.  Returns 0
 * when all of it was read; or a close code when a close frame came
 * (the client's, or WS_CLOSE_NORMAL) or the client broke the protocol
 * (WS_CLOSE_PROTOCOL, _UNSUPPORTED, _TOO_BIG): the connection ends, and
 * what follows is not read.  A ping leaves its payload for a pong
 * (ws_reader_pong).
 */
int	ws_read(struct ws_reader *, char *buf, size_t len, size_t *out);

/* The payload of the last ping not yet answered (*len bytes), or NULL;
 * taking it answers it. */
const char *ws_reader_pong(struct ws_reader *, size_t *len);

/* Make the writer ws_frame uses; -1 if memory runs out.  Once for the
 * process, before the first frame. */
int	ws_frame_init(void);

/* Write a final frame of opcode op carrying payload[0..len) into dst,
 * which has room for len + WS_HEADER_MAX bytes.  Returns the bytes. */
size_t	ws_frame(char *dst, int op, const char *payload, size_t len);

/* Write a close frame with code into dst (2 + WS_HEADER_MAX bytes). */
size_t	ws_close_frame(char *dst, int code);

#endif /* HERALD_WSFRAME_H */
