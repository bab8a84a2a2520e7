/* base64url without padding (b64url.h). */
#include "b64url.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of c, or -1. */
static int
value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Encode src[0..len). */
size_t
b64url_encode(const unsigned char *src, size_t len, char *dst)
{
	size_t i, n = 0;

	for (i = 0; i + 2 < len; i += 3) {
		unsigned long v = (unsigned long)src[i] << 16 |
		    (unsigned long)src[i + 1] << 8 | src[i + 2];

		dst[n++] = alphabet[v >> 18 & 63];
		dst[n++] = alphabet[v >> 12 & 63];
		dst[n++] = alphabet[v >> 6 & 63];
		dst[n++] = alphabet[v & 63];
	}
	if (len - i == 1) {
		dst[n++] = alphabet[src[i] >> 2];
		dst[n++] = alphabet[(src[i] & 3) << 4];
	} else if (len - i == 2) {
		dst[n++] = alphabet[src[i] >> 2];
		dst[n++] = alphabet[(src[i] & 3) << 4 | src[i + 1] >> 4];
		dst[n++] = alphabet[(src[i + 1] & 15) << 2];
	}
	dst[n] = '\0';
	return n;
}

/* Decode src[0..len) strictly. */
long
b64url_decode(const char *src, size_t len, unsigned char *dst)
{
	unsigned long acc = 0;
	size_t i, n = 0;
	int bits = 0, v;

	if (len % 4 == 1)
		return -1;	/* 6 bits: not a byte */
	for (i = 0; i < len; i++) {
		if ((v = value((unsigned char)src[i])) == -1)
			return -1;
		acc = (acc << 6 | (unsigned long)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			dst[n++] = (unsigned char)(acc >> bits);
		}
	}
	/* The bits left over must be zero. */
	if ((acc & ((1ul << bits) - 1)) != 0)
		return -1;
	return (long)n;
}
