/*
 * base64url without padding (RFC 4648 section 5, as JWS uses it), strict
 * on decoding: no '=', no byte outside the alphabet, no length that no
 * encoding has, and no set bit left over (one encoding per value).
 */
#ifndef HERALD_B64URL_H
#define HERALD_B64URL_H

#include <stddef.h>

/* The length of the encoding of n bytes, and of the decoding of an
 * n-character encoding (an upper bound if it is invalid). */
#define B64URL_ENC_LEN(n)	(((n) * 4 + 2) / 3)
#define B64URL_DEC_LEN(n)	((n) * 3 / 4)

/* Encode src[0..len) into dst (B64URL_ENC_LEN(len) + 1 bytes, NUL
 * included); returns the length written. */
size_t	b64url_encode(const unsigned char *src, size_t len, char *dst);

/*
 * Decode src[0..len) into dst (B64URL_DEC_LEN(len) bytes).  Returns the
 * length decoded, or -1 if src is not a strict encoding.
 */
long	b64url_decode(const char *src, size_t len, unsigned char *dst);

#endif /* HERALD_B64URL_H */
