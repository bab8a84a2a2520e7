/*
 * Line-oriented text files for auth/: the reader of a buffer the parsers
 * share, and the one function that touches the file system.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol.h"
#include "textfile.h"

/* Start reading buf[0..len). */
void
textfile_init(struct textfile *tf, const char *name, const char *buf,
    size_t len, char *err, size_t errlen)
{
	tf->name = name;
	tf->buf = buf;
	tf->len = len;
	tf->pos = 0;
	tf->lineno = 0;
	tf->err = err;
	tf->errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';
}

/* Write "NAME:LINE: message"; returns -1. */
int
textfile_error(struct textfile *tf, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (tf->errlen == 0)
		return -1;
	n = snprintf(tf->err, tf->errlen, "%s:%u: ", tf->name, tf->lineno);
	if (n >= 0 && (size_t)n < tf->errlen) {
		va_start(ap, fmt);
		vsnprintf(tf->err + n, tf->errlen - n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The next line that is not blank nor a comment, trimmed. */
int
textfile_next(struct textfile *tf, const char **line, size_t *len)
{
	while (tf->pos < tf->len) {
		const char *s = tf->buf + tf->pos;
		const char *nl = memchr(s, '\n', tf->len - tf->pos);
		size_t n = nl != NULL ? (size_t)(nl - s) : tf->len - tf->pos;

		tf->lineno++;
		tf->pos += n + (nl != NULL);
		if (n > TEXTFILE_LINE_MAX)
			return textfile_error(tf, "line longer than %d bytes",
			    TEXTFILE_LINE_MAX);
		if (memchr(s, '\0', n) != NULL)
			return textfile_error(tf, "a NUL byte");
		if (n > 0 && s[n - 1] == '\r')
			n--;
		while (n > 0 && is_blank(*s)) {
			s++;
			n--;
		}
		while (n > 0 && is_blank(s[n - 1]))
			n--;
		if (n == 0 || *s == '#')
			continue;
		*line = s;
		*len = n;
		return 1;
	}
	return 0;
}

/* Split off the first word of s[0..*len). */
void
textfile_word(const char **s, size_t *len, const char **word, size_t *wlen)
{
	size_t i = 0, n;

	while (i < *len && is_blank((*s)[i]))
		i++;
	for (n = 0; i + n < *len && !is_blank((*s)[i + n]); n++)
		;
	*word = *s + i;
	*wlen = n;
	i += n;
	while (i < *len && is_blank((*s)[i]))
		i++;
	*s += i;
	*len -= i;
}

/* Escape w[0..len) for an error message. */
const char *
textfile_quote(char *buf, size_t buflen, const char *w, size_t len)
{
	size_t n, cut = len > TEXTFILE_QUOTE_CUT ? TEXTFILE_QUOTE_CUT : len;

	if (buflen < TEXTFILE_QUOTE_MAX) {
		if (buflen > 0)
			buf[0] = '\0';
		return buf;
	}
	n = proto_escape(buf, buflen - 4, w, cut);
	if (cut < len) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

/* Read the whole file at path into a new buffer. */
char *
textfile_read(const char *path, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
		goto fail;
	if (fstat(fd, &st) == -1)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > TEXTFILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", path,
		    TEXTFILE_MAX);
		goto out;
	}
	/* One byte more than its size, to see it grow while read. */
	if ((buf = malloc((size_t)st.st_size + 2)) == NULL)
		goto fail;
	while ((r = read(fd, buf + n, (size_t)st.st_size + 1 - n)) != 0) {
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			goto fail;
		n += (size_t)r;
		if (n > (size_t)st.st_size) {
			snprintf(err, errlen, "%s: changed while read", path);
			goto out;
		}
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	snprintf(err, errlen, "%s: %s", path, strerror(errno));
out:
	if (fd != -1)
		close(fd);
	free(buf);
	return NULL;
}

char *
textfile_dup(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s != NULL) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}
