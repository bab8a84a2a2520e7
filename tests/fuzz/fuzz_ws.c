/*
 * Fuzz target for the WebSocket frame reader (common/wsframe.c): the
 * input after its first two bytes is read as a client's bytes, cut into
 * reads of a length the first byte chooses, with a limit the second
 * chooses.  The lines a read leaves must fit in what it read; a close
 * code must be one the reader may send; nothing is read after it; and a
 * reader that says it is idle holds nothing.  Each text payload is also
 * framed as the server frames it, which must add at most WS_HEADER_MAX.
 *
 * libFuzzer: tests/fuzz/run-libfuzzer ws SECONDS
 * Replay without libFuzzer: link with standalone.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wsframe.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char framed[65536 + WS_HEADER_MAX];
	if (size < 2)
		return 0;
	size_t step = 1 + data[0] % 64 * (data[0] >= 192 ? 64 : 1);
	size_t max = 1 + (size_t)data[1] * 16;
	struct ws_reader *r = ws_reader_new(max);
	char *buf = malloc(size);

	if (r == NULL || buf == NULL || ws_frame_init() == -1)
		abort();
	for (size_t at = 2; at < size; at += step) {
		size_t len = size - at < step ? size - at : step, out, plen;
		memcpy(buf, data + at, len);
		int code = ws_read(r, buf, len, &out);
		if (out > len)
			abort();
		if (out > 0 && ws_frame(framed, WS_OP_TEXT, buf, out) >
		    out + WS_HEADER_MAX)
			abort();
		const char *pong = ws_reader_pong(r, &plen);
		if (pong != NULL && plen > WS_CONTROL_MAX)
			abort();
		if (code != 0) {
			if (code != WS_CLOSE_NORMAL &&
			    code != WS_CLOSE_PROTOCOL &&
			    code != WS_CLOSE_UNSUPPORTED &&
			    code != WS_CLOSE_TOO_BIG)
				abort();
			break;
		}
		if (ws_reader_idle(r)) {	/* a new one takes over */
			ws_reader_free(r);
			if ((r = ws_reader_new(max)) == NULL)
				abort();
		}
	}
	ws_reader_free(r);
	free(buf);
	return 0;
}
