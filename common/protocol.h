/*
 * The line protocol (herald-protocol(7)): parse one client line into a command,
 * and format the server's error lines.  Pure code, no I/O.
 */
#ifndef HERALD_PROTOCOL_H
#define HERALD_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

enum cmd_verb {
	CMD_NONE,	/* empty or blank line: ignored, no answer */
	CMD_SUB,
	CMD_UNSUB,
	CMD_GET,
	CMD_PUB,
	CMD_SYNC,
	CMD_PING,
	CMD_STATS,
	CMD_QUIT,
	CMD_AUTH	/* name: a user, payload: its password; or name: a
			 * token and no payload */
};

/* Error codes, in the order herald-protocol(7) lists them. */
enum proto_err {
	PERR_NONE,
	PERR_SYNTAX,
	PERR_UNKNOWN_COMMAND,
	PERR_LINE_TOO_LONG,
	PERR_BAD_TOPIC,
	PERR_BAD_PATTERN,
	PERR_BAD_PAYLOAD,
	PERR_PAYLOAD_TOO_LARGE,
	PERR_FORBIDDEN,
	PERR_TOO_MANY_SUBS,
	PERR_NOT_SUBSCRIBED,
	PERR_NOT_FOUND,
	PERR_BUSY,
	PERR_AUTH_REQUIRED,
	PERR_AUTH_FAILED
};

/* A parsed line.  Pointers point into the line given to proto_parse. */
struct cmd {
	enum cmd_verb	 verb;
	const char	*verb_str;	/* as sent, for error details */
	size_t		 verb_len;
	const char	*name;		/* topic or pattern (SUB UNSUB GET PUB) */
	size_t		 name_len;
	const char	*payload;	/* PUB payload; PING token (may be empty) */
	size_t		 payload_len;
	int		 has_since;	/* SUB <pattern> <since> */
	uint64_t	 since;
	/*
	 * A PUB payload's own fault (PERR_BAD_PAYLOAD or
	 * PERR_PAYLOAD_TOO_LARGE) is reported here, not by proto_parse,
	 * because a permission check (forbidden) comes before it in the
	 * order of faults.  PERR_NONE when the payload is good.
	 */
	enum proto_err	 payload_err;
};

/*
 * Parse one line (without its LF; a CR before the LF already removed).
 * Returns PERR_NONE and fills c (verb CMD_NONE for a blank line), or the
 * first fault in the order: verb, words, topic or pattern.  Payload faults
 * go to c->payload_err.  Verbs are case-insensitive.
 */
enum proto_err	proto_parse(const char *line, size_t len, size_t max_payload,
		    struct cmd *c);

/* The lowercase code word of an error ("syntax", "bad-topic", ...). */
const char	*proto_err_code(enum proto_err);
/* A seq as a since is written: 1..20 digits below 2^64; 0 (*v set) or
 * -1. */
int		 proto_parse_seq(const char *s, size_t len, uint64_t *v);

/* 1 if a line answered with this error counts as "bad" for max_errors. */
int		 proto_err_is_bad(enum proto_err);

/*
 * Write "-ERR <code> <detail>\n" into buf (detail escaped: bytes outside
 * 0x20..0x7e and the backslash as \xNN); detail may be empty, then no
 * space follows the code.  Returns the length written (truncating the
 * detail to fit buflen), always LF-terminated; buflen >= 64.
 */
size_t		 proto_format_err(char *buf, size_t buflen, enum proto_err,
		    const char *detail, size_t detail_len);

/*
 * Escape src into dst as for an error detail.  Returns the length written,
 * never more than dstlen; stops before a character that would not fit.
 */
size_t		 proto_escape(char *dst, size_t dstlen, const char *src,
		    size_t srclen);

#endif /* HERALD_PROTOCOL_H */
