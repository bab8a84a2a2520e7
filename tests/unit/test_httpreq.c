/*
 * Unit tests of the HTTP request head parser (common/httpreq.c): a GET
 * taken whole and its parts found, an unfinished head, the limit, every
 * refusal (smuggling attempts among them), and the query's decoding.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"

static enum http_result
parse(const char *s, struct http_request *req)
{
	return http_request_parse(s, strlen(s), 8192, req);
}

START_TEST(get_taken_whole)
{
	struct http_request r;
	const char *s = "GET /events?sub=a/%23&since=4 HTTP/1.1\r\n"
	    "Host: x\r\nlast-event-id: 17\r\n"
	    "Authorization: Bearer t.o.k\r\n\r\nGARBAGE AFTER";

	ck_assert_int_eq(parse(s, &r), HTTP_DONE);
	ck_assert_int_eq(r.path_len, 7);
	ck_assert(memcmp(r.path, "/events", 7) == 0);
	ck_assert_int_eq(r.query_len, 17);
	ck_assert(memcmp(r.query, "sub=a/%23&since=4", 17) == 0);
	ck_assert_int_eq(r.last_event_id_len, 2);
	ck_assert(memcmp(r.last_event_id, "17", 2) == 0);
	ck_assert_int_eq(r.authorization_len, 12);
	ck_assert(memcmp(r.authorization, "Bearer t.o.k", 12) == 0);
	ck_assert_int_eq(r.head, 0);
	/* a HEAD is a GET answered without its body */
	ck_assert_int_eq(parse("HEAD /?token=x HTTP/1.1\r\n\r\n", &r),
	    HTTP_DONE);
	ck_assert_int_eq(r.head, 1);
	ck_assert_int_eq(r.path_len, 1);
	ck_assert_int_eq(r.query_len, 7);
	ck_assert_int_eq(parse("GET /metrics HTTP/1.0\r\n\r\n", &r),
	    HTTP_DONE);
	ck_assert_ptr_null(r.query);
	ck_assert_ptr_null(r.authorization);
	/* one Content-Length of 0 frames no body: harmless */
	ck_assert_int_eq(parse("GET /metrics HTTP/1.1\r\nContent-Length: 0"
	    "\r\n\r\n", &r), HTTP_DONE);
}
END_TEST

START_TEST(unfinished_and_limit)
{
	struct http_request r;
	const char *s = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
	char big[600];

	ck_assert_int_eq(parse(s, &r), HTTP_MORE);
	ck_assert_int_eq(parse("GE", &r), HTTP_MORE);
	ck_assert_int_eq(http_request_parse(s, strlen(s), 16, &r),
	    HTTP_HEAD_TOO_LARGE);
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
	ck_assert_int_eq(http_request_parse(big, sizeof(big), 512, &r),
	    HTTP_HEAD_TOO_LARGE);
	ck_assert_int_eq(http_request_parse(big, sizeof(big), 8192, &r),
	    HTTP_MORE);
}
END_TEST

START_TEST(refusals)
{
	static const struct { const char *req; enum http_result want; } t[] = {
		{ "GET /m HTTP/1.1\r\nContent-Length: 0\r\n"
		  "Content-Length: 0\r\n\r\n", HTTP_BAD },
		{ "GET /m HTTP/1.1\r\nContent-Length: 1\r\n"
		  "content-length: 2\r\n\r\n", HTTP_BAD },
		{ "GET /m HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
		  HTTP_TOO_LARGE },
		{ "GET /m HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
		  HTTP_BAD },
		{ "GET /m HTTP/1.1\r\nTransfer-Encoding: identity\r\n"
		  "Content-Length: 3\r\n\r\n", HTTP_BAD },
		{ "GET /m HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", HTTP_BAD },
		{ "GET /m HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n", HTTP_BAD },
		{ "GET /m HTTP/1.1\r\nAuthorization: a\r\n"
		  "Authorization: b\r\n\r\n", HTTP_BAD },
		{ "GET /m HTTP/1.1\r\nLast-Event-ID: 1\r\n"
		  "Last-Event-ID: 2\r\n\r\n", HTTP_BAD },
		{ "GET /m HTTP/2.0\r\n\r\n", HTTP_BAD },
		{ "GET * HTTP/1.1\r\n\r\n", HTTP_BAD },
		{ "GET http://h HTTP/1.1\r\n\r\n", HTTP_BAD },
		{ "G@T /m HTTP/1.1\r\n\r\n", HTTP_BAD },
		{ "GET /m HTTP/1.1\r\nBad Header: x\r\n\r\n", HTTP_BAD },
		{ "GET /m HTTP/1.1\r\nContent-Length : 5\r\n\r\n", HTTP_BAD },
		{ "GET /m HTTP/1.1\nX: a\r\r\n\r\n", HTTP_BAD },
		{ "POST /m HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
		  HTTP_NOT_ALLOWED },
		{ "PUT /m HTTP/1.1\r\n\r\n", HTTP_NOT_ALLOWED },
		{ "OPTIONS /m HTTP/1.1\r\n\r\n", HTTP_NOT_ALLOWED },
		{ "HEAD /m HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
		  HTTP_TOO_LARGE },
	};
	struct http_request r;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ck_assert_msg(parse(t[i].req, &r) == t[i].want,
		    "%s: %d, not %d", t[i].req, parse(t[i].req, &r),
		    t[i].want);
}
END_TEST

/* The parameters of q, "name=value;" each, or "BAD" at a bad one. */
static void
params(const char *q, char *out, size_t outlen)
{
	char name[HTTP_PARAM_MAX], value[HTTP_PARAM_MAX];
	size_t qlen = strlen(q), nlen, vlen, o = 0;
	int r;

	out[0] = '\0';
	while ((r = http_query_next(&q, &qlen, name, &nlen, value,
	    &vlen)) == 1)
		o += snprintf(out + o, outlen - o, "%.*s=%.*s;", (int)nlen,
		    name, (int)vlen, value);
	if (r == -1)
		snprintf(out + o, outlen - o, "BAD");
}

START_TEST(query_decoding)
{
	char out[256];

	params("sub=a%2Fb%23&sub=a/+/c&&since=07&flag&=x", out, sizeof(out));
	ck_assert_str_eq(out, "sub=a/b#;sub=a/+/c;since=07;flag=;=x;");
	params("a=%41%6a%7E", out, sizeof(out));
	ck_assert_str_eq(out, "a=Aj~;");
	params("a=1&b=%zz&c=3", out, sizeof(out));
	ck_assert_str_eq(out, "a=1;BAD");
	params("a=%4", out, sizeof(out));
	ck_assert_str_eq(out, "BAD");
	params("a=%", out, sizeof(out));
	ck_assert_str_eq(out, "BAD");
	params("a=x%00y", out, sizeof(out));
	ck_assert_str_eq(out, "BAD");
	params("", out, sizeof(out));
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(query_value_too_long)
{
	static char q[HTTP_PARAM_MAX + 16];
	char name[HTTP_PARAM_MAX], value[HTTP_PARAM_MAX];
	const char *p = q;
	size_t len, nlen, vlen;

	memcpy(q, "t=", 2);
	memset(q + 2, 'x', HTTP_PARAM_MAX);
	len = 2 + HTTP_PARAM_MAX;
	ck_assert_int_eq(http_query_next(&p, &len, name, &nlen, value, &vlen),
	    1);
	ck_assert_int_eq(vlen, HTTP_PARAM_MAX);
	p = q;
	q[2 + HTTP_PARAM_MAX] = 'x';	/* one byte more */
	len = 2 + HTTP_PARAM_MAX + 1;
	ck_assert_int_eq(http_query_next(&p, &len, name, &nlen, value, &vlen),
	    -1);
}
END_TEST

static Suite *
httpreq_suite(void)
{
	Suite *s = suite_create("httpreq");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, get_taken_whole);
	tcase_add_test(tc, unfinished_and_limit);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, query_decoding);
	tcase_add_test(tc, query_value_too_long);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(httpreq_suite());
	int failed;

	/* Each test in its own process, unless CK_FORK=no (for a debugger). */
	if (getenv("CK_FORK") == NULL)
		srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
