/*
 * Fuzz target for the configuration loader: the input is a config file's
 * text (libconfig syntax).  Whatever it holds, loading must not crash or
 * leak, must report at least one error or give a configuration that
 * passes the same checks again, and must never accept a value out of
 * range.
 *
 * libFuzzer: clang -fsanitize=fuzzer,address,undefined -Icommon -Ishm \
 *     -DSYSCONFDIR='"/etc"' -DLOCALSTATEDIR='"/var"' -DRUNSTATEDIR='"/run"' \
 *     common/config.c common/net.c common/topic.c \
 *     tests/fuzz/fuzz_config.c -lconfig
 * Replay without libFuzzer: link with standalone.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	nerrors;

static void
count_error(void *arg, const char *msg)
{
	/* Every message names where: "file:line: ..." or "file: ...". */
	if (strncmp(msg, "fuzz.conf", 9) != 0 &&
	    strncmp(msg, "command line", 12) != 0) {
		fprintf(stderr, "error without a place: %s\n", msg);
		abort();
	}
	nerrors++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct herald_config c;
	char *text = malloc(size + 1);

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	nerrors = 0;
	int n = config_load(&c, "fuzz.conf", text, NULL, 0, count_error, NULL);
	if (n != nerrors)
		abort();
	if (n == 0) {
		/* An accepted configuration holds only sane values. */
		if (c.workers < 1 || c.workers > 128 || c.listen.n < 1 ||
		    c.clients_max_line < 64 || c.max_payload < 1 ||
		    (c.bus_size & (c.bus_size - 1)) != 0 ||
		    c.ingest_max_line < 64)
			abort();
	}
	config_free(&c);
	free(text);
	return 0;
}
