/*
 * Fuzz target for the bus reader on a corrupted file: a small bus file
 * with known contents is damaged as the input says (pairs of a 4-byte
 * offset and a byte to XOR there; a first byte with its high bit set
 * also truncates the file), then opened.  Opening must either refuse it
 * with a message or repair it; everything read back must be well formed
 * (never a torn record), and the repaired bus must take new records.
 *
 * libFuzzer: clang -fsanitize=fuzzer,address,undefined -Icommon -Ishm \
 *     shm/bus.c common/topic.c tests/fuzz/fuzz_bus.c
 * Replay without libFuzzer: link with standalone.c.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus.h"
#include "topic.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(x) do { if (!(x)) { \
	fprintf(stderr, "fuzz_bus: check failed: %s (line %d)\n", #x, \
	    __LINE__); abort(); } } while (0)

static char		 path[64];
static uint8_t		*image;		/* the intact file */
static size_t		 image_len;

static struct bus_config
geometry(void)
{
	struct bus_config c = { path, 64 * 1024, 16, 64 * 1024, 4 };
	return c;
}

/* Build the intact file once: records that wrap the ring, 20 topics. */
static void
make_image(void)
{
	struct bus_config c;
	char err[256], topic[32], payload[300];
	struct stat st;

	snprintf(path, sizeof(path), "/tmp/fuzz-bus-%d", (int)getpid());
	unlink(path);
	c = geometry();
	struct bus *b = bus_open(&c, err, sizeof(err));
	CHECK(b != NULL);
	for (int i = 0; i < 700; i++) {
		int n = snprintf(topic, sizeof(topic), "t/%d", i % 20);
		memset(payload, 'a' + i % 26, sizeof(payload));
		CHECK(bus_append(b, topic, n, payload, 1 + (i * 37) % 290) != 0);
	}
	bus_close(b);
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && fstat(fd, &st) == 0);
	image_len = st.st_size;
	image = malloc(image_len);
	CHECK(image != NULL && read(fd, image, image_len) == (ssize_t)image_len);
	close(fd);
}

/* Write the damaged copy the input describes. */
static void
write_damaged(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(image_len);
	size_t len = image_len;

	CHECK(copy != NULL);
	memcpy(copy, image, image_len);
	if (size > 0 && (data[0] & 0x80))
		len = (size_t)data[0] * 977 % image_len;
	for (size_t i = 1; i + 5 <= size; i += 5) {
		uint32_t off;
		memcpy(&off, data + i, 4);
		copy[off % image_len] ^= data[i + 4];
	}
	int fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0600);
	CHECK(fd >= 0 && write(fd, copy, len) == (ssize_t)len);
	close(fd);
	free(copy);
}

/* Every record read back is a whole, well-formed MSG line. */
static void
check_ring(struct bus *b)
{
	static char buf[64 * 1024];
	struct bus_rec recs[64];
	uint64_t pos, seq, last = 0;

	bus_tail(b, &pos, &seq);
	for (;;) {
		int n = bus_read(b, &pos, buf, sizeof(buf), recs, 64);
		/* (the buffer takes any record of this ring: never too big) */
		CHECK(n >= 0);
		if (n == 0)
			break;
		for (int i = 0; i < n; i++) {
			const struct bus_rec *r = &recs[i];
			CHECK(r->seq > last);
			last = r->seq;
			CHECK(r->line_len > 4 && memcmp(r->line, "MSG ", 4) == 0);
			CHECK(r->line[r->line_len - 1] == '\n');
			CHECK(topic_valid(r->topic, r->topic_len));
			CHECK(r->payload_len >= 1);
			CHECK(r->payload + r->payload_len < r->line + r->line_len);
			uint64_t found;
			CHECK(bus_find_seq(b, r->seq, &found) == BUS_OK &&
			    found == r->pos);
		}
	}
	CHECK(last <= bus_head_seq(b));
}

static int
check_value(void *arg, const struct bus_value *v)
{
	CHECK(topic_valid(v->topic, v->topic_len));
	CHECK(v->payload_len >= 1 && v->seq >= 1);
	CHECK(v->seq <= bus_head_seq(arg));
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bus_config c;
	char err[512] = "";

	if (image == NULL)
		make_image();
	write_damaged(data, size);
	c = geometry();
	struct bus *b = bus_open(&c, err, sizeof(err));
	if (b == NULL) {
		CHECK(err[0] != '\0');		/* refused, with a reason */
		return 0;
	}
	check_ring(b);
	bus_retained_foreach(b, "#", 1, check_value, b);
	uint64_t head = bus_head_seq(b);
	/* The repaired bus takes new records, with seq going on. */
	CHECK(bus_append(b, "after/repair", 12, "ok", 2) == head + 1);
	check_ring(b);
	bus_close(b);
	return 0;
}
