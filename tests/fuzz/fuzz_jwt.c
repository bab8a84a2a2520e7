/*
 * Fuzz target for the token checker (auth/jwt.c): the input is a token,
 * checked with a fixed HS256 key.  A good result must come with a valid
 * user and valid patterns; anything else with empty claims.  Inputs that
 * start with '{' are taken as a payload instead and signed first, so the
 * fuzzer reaches the claims as well as the parser.
 *
 * libFuzzer: tests/fuzz/run-libfuzzer jwt SECONDS
 * Replay without libFuzzer: link with standalone.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"
#include "jwt_sign.h"
#include "topic.h"
#include "textfile.h"

#define KEY	"fuzz key: thirty-two bytes long."

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_list(const struct perm_list *pl)
{
	size_t i;

	for (i = 0; i < pl->n; i++)
		if (!pattern_valid(pl->v[i], strlen(pl->v[i])))
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct jwt_keys *ks;
	static struct jwt_signer *signer;
	const struct jwt_opts o = { size % 2, size % 3 ? NULL : "herald" };
	char err[256], *tok = NULL, *payload;
	struct jwt_claims c;
	enum jwt_result r;

	if (ks == NULL) {
		if ((ks = jwt_keys_new()) == NULL ||
		    jwt_keys_add(ks, KEY, strlen(KEY), "k", err,
		    sizeof(err)) == -1 ||
		    (signer = jwt_signer_new(KEY, strlen(KEY), "k", err,
		    sizeof(err))) == NULL)
			abort();
	}
	if (size > 0 && data[0] == '{' && memchr(data, '\0', size) == NULL) {
		if ((payload = textfile_dup((const char *)data, size)) == NULL ||
		    (tok = jwt_sign(signer, NULL, payload)) == NULL)
			abort();
		free(payload);
		data = (const uint8_t *)tok;
		size = strlen(tok);
	}
	r = jwt_check(ks, &o, (const char *)data, size, 1700000000, &c);
	if (r == JWT_OK) {
		if (!ident_valid(c.sub, strlen(c.sub)))
			abort();
		check_list(&c.read);
		check_list(&c.publish);
	} else if (c.sub[0] != '\0' || c.read.n != 0 || c.publish.n != 0) {
		abort();
	}
	jwt_claims_free(&c);
	free(tok);
	return 0;
}
