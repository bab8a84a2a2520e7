/*
 * Fuzz target for the users file parser (auth/users.c): any bytes are
 * parsed; an error must be one "NAME:LINE: message" line.  And the edit
 * herald passwd makes (users_file_set) must keep a good file good, with
 * the user in it once: no password is checked (a hash per input would
 * make the run crawl).
 *
 * libFuzzer: tests/fuzz/run-libfuzzer users SECONDS
 * Replay without libFuzzer: link with standalone.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "textfile.h"
#include "users.h"

#define HASH	"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBn" \
		"IFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char err[TEXTFILE_ERR_MAX];
	struct users *us, *us2;
	size_t n, len;
	char *out;

	memset(err, 'z', sizeof(err));
	if ((us = users_parse(s, size, "fuzz", err, sizeof(err))) == NULL) {
		if (strncmp(err, "fuzz:", 5) != 0 || strchr(err, '\n'))
			abort();
		return 0;
	}
	n = users_count(us);
	users_free(us);
	if ((out = users_file_set(s, size, "fuzz", HASH, &len)) == NULL)
		abort();
	if ((us2 = users_parse(out, len, "fuzz", err, sizeof(err))) == NULL)
		abort();
	/* The user replaced, or added. */
	if (users_count(us2) != n && users_count(us2) != n + 1)
		abort();
	users_free(us2);
	free(out);
	return 0;
}
