/*
 * The text files of auth/ (users, ACL): read whole with a size limit, then
 * walked line by line from a buffer, so that the parsers do no I/O and can
 * be unit-tested and fuzzed alone.  Errors read "FILE:LINE: message".
 */
#ifndef HERALD_TEXTFILE_H
#define HERALD_TEXTFILE_H

#include <stddef.h>

#define TEXTFILE_MAX	(16 * 1024 * 1024) /* largest file read: room for
					 * a hundred thousand users' lines
					 * and rules, and a bound on what a
					 * wrong path (a log, a device) costs */
#define TEXTFILE_LINE_MAX 1024		/* longest line: a keyword and a
					 * pattern (TOPIC_MAX), or a user and
					 * a crypt(3) hash (about 140 bytes),
					 * with room to spare */
#define TEXTFILE_ERR_MAX 256		/* an error message, with its file
					 * name and line */

/* A buffer being read line by line. */
struct textfile {
	const char	*name;		/* for errors: the file's path */
	const char	*buf;
	size_t		 len;
	size_t		 pos;		/* where the next line starts */
	unsigned	 lineno;	/* of the line last returned */
	char		*err;		/* where errors go */
	size_t		 errlen;
};

/* Start reading buf[0..len), named name in errors written to err. */
void	textfile_init(struct textfile *, const char *name, const char *buf,
	    size_t len, char *err, size_t errlen);

/*
 * The next line that is not blank nor a comment ('#' its first non-blank
 * byte), without its LF, a CR before it, and blanks (spaces, tabs) around
 * it.  Returns 1 and the line, 0 at the end, -1 after writing an error (a
 * line over TEXTFILE_LINE_MAX bytes, a NUL byte).
 */
int	textfile_next(struct textfile *, const char **line, size_t *len);

/* Write "NAME:LINE: message" into the error buffer; returns -1. */
int	textfile_error(struct textfile *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/*
 * Split off the first word of s[0..*len) (words are separated by blanks):
 * returns it in *word and *wlen, and leaves s and *len at what follows,
 * blanks skipped.  *wlen is 0 when nothing is left.
 */
void	textfile_word(const char **s, size_t *len, const char **word,
	    size_t *wlen);

#define TEXTFILE_QUOTE_CUT 64		/* bytes of a word quoted in an error:
					 * enough to recognize it */
#define TEXTFILE_QUOTE_MAX (TEXTFILE_QUOTE_CUT * 4 + 4) /* a buffer that
					 * holds any quote: each byte may be
					 * \xNN, then "..." and a NUL */

/*
 * Escape w[0..len) for an error message into buf (bytes outside 0x20..0x7e
 * and the backslash as \xNN, cut at TEXTFILE_QUOTE_CUT bytes with "...");
 * returns buf, which must hold TEXTFILE_QUOTE_MAX bytes.
 */
const char *textfile_quote(char *buf, size_t buflen, const char *w,
	    size_t len);

/*
 * Read the whole file at path into a new buffer (NUL-terminated after
 * *len bytes; free it).  NULL after writing "PATH: why" into err: it
 * cannot be opened or read, is not a regular file, or is larger than
 * TEXTFILE_MAX.
 */
/* A NUL-terminated copy of the n bytes at p (which need not be a
 * string: strndup may read past them), or NULL. */
char	*textfile_dup(const char *p, size_t n);

char	*textfile_read(const char *path, size_t *len, char *err,
	    size_t errlen);

#endif /* HERALD_TEXTFILE_H */
