/*
 * Unit tests of the line protocol: verbs, words and arity, the PUB
 * payload rule, since, the order of faults, blank lines, error codes,
 * and the escaping and truncation of "-ERR" lines.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define MAXPL		65536	/* the default max_payload */

/* A line given as a string literal, NULs included. */
#define LINE(s)		.line = s, .len = sizeof(s) - 1
#define PAYLOAD(s)	.payload = s, .payload_len = sizeof(s) - 1

struct parse_case {
	const char	*line;
	size_t		 len;
	size_t		 max;		/* max_payload; 0 means MAXPL */
	enum proto_err	 err;
	enum cmd_verb	 verb;		/* checked when err is PERR_NONE */
	const char	*name;		/* NULL: no name */
	const char	*payload;	/* NULL: empty payload or token */
	size_t		 payload_len;
	int		 has_since;
	uint64_t	 since;
	enum proto_err	 payload_err;
};

/* Check c against the row: every field, for a line parsed without fault. */
static void
check_case(const struct parse_case *pc, int row)
{
	struct cmd c;
	enum proto_err e;

	e = proto_parse(pc->line, pc->len, pc->max ? pc->max : MAXPL, &c);
	ck_assert_msg(e == pc->err, "row %d \"%s\": error %s, want %s", row,
	    pc->line, proto_err_code(e), proto_err_code(pc->err));
	if (e != PERR_NONE)
		return;
	ck_assert_msg(c.verb == pc->verb, "row %d: verb %d, want %d", row,
	    c.verb, pc->verb);
	if (pc->name == NULL)
		ck_assert_msg(c.name_len == 0, "row %d: has a name", row);
	else {
		ck_assert_msg(c.name_len == strlen(pc->name) &&
		    memcmp(c.name, pc->name, c.name_len) == 0,
		    "row %d: name \"%.*s\", want \"%s\"", row,
		    (int)c.name_len, c.name, pc->name);
	}
	ck_assert_msg(c.payload_len == pc->payload_len,
	    "row %d: payload length %zu, want %zu", row, c.payload_len,
	    pc->payload_len);
	if (pc->payload_len > 0)
		ck_assert_msg(memcmp(c.payload, pc->payload,
		    c.payload_len) == 0, "row %d: payload \"%.*s\"", row,
		    (int)c.payload_len, c.payload);
	ck_assert_int_eq(c.has_since, pc->has_since);
	if (pc->has_since)
		ck_assert_msg(c.since == pc->since, "row %d: since %llu",
		    row, (unsigned long long)c.since);
	ck_assert_msg(c.payload_err == pc->payload_err,
	    "row %d: payload_err %s, want %s", row,
	    proto_err_code(c.payload_err), proto_err_code(pc->payload_err));
}

/* Every verb, in several cases. */
static const struct parse_case verb_cases[] = {
	{ LINE("SUB a/+"), .verb = CMD_SUB, .name = "a/+" },
	{ LINE("sub a/+"), .verb = CMD_SUB, .name = "a/+" },
	{ LINE("Sub a/+"), .verb = CMD_SUB, .name = "a/+" },
	{ LINE("sUb a/+"), .verb = CMD_SUB, .name = "a/+" },
	{ LINE("UNSUB a/#"), .verb = CMD_UNSUB, .name = "a/#" },
	{ LINE("unsub a/#"), .verb = CMD_UNSUB, .name = "a/#" },
	{ LINE("UnSuB a/#"), .verb = CMD_UNSUB, .name = "a/#" },
	{ LINE("GET a/b"), .verb = CMD_GET, .name = "a/b" },
	{ LINE("get a/b"), .verb = CMD_GET, .name = "a/b" },
	{ LINE("gEt a/b"), .verb = CMD_GET, .name = "a/b" },
	{ LINE("PUB a/b x"), .verb = CMD_PUB, .name = "a/b", PAYLOAD("x") },
	{ LINE("pub a/b x"), .verb = CMD_PUB, .name = "a/b", PAYLOAD("x") },
	{ LINE("PuB a/b x"), .verb = CMD_PUB, .name = "a/b", PAYLOAD("x") },
	{ LINE("SYNC"), .verb = CMD_SYNC },
	{ LINE("sync"), .verb = CMD_SYNC },
	{ LINE("SyNc"), .verb = CMD_SYNC },
	{ LINE("PING"), .verb = CMD_PING },
	{ LINE("AUTH alice s3cret"), .verb = CMD_AUTH, .name = "alice",
	  PAYLOAD("s3cret") },
	{ LINE("auth eyJ.eyJ.sig"), .verb = CMD_AUTH, .name = "eyJ.eyJ.sig" },
	{ LINE("Auth \t alice\t pw \t"), .verb = CMD_AUTH, .name = "alice",
	  PAYLOAD("pw") },
	{ LINE("ping"), .verb = CMD_PING },
	{ LINE("pInG"), .verb = CMD_PING },
	{ LINE("STATS"), .verb = CMD_STATS },
	{ LINE("stats"), .verb = CMD_STATS },
	{ LINE("StAtS"), .verb = CMD_STATS },
	{ LINE("QUIT"), .verb = CMD_QUIT },
	{ LINE("quit"), .verb = CMD_QUIT },
	{ LINE("Quit"), .verb = CMD_QUIT },
	/* Unknown verbs, near misses included. */
	{ LINE("FOO"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("FOO a b c"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("SU"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("SUBS a"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("PUBLISH a x"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("PINGPONG"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("HELLO"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("MSG a 1 x"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("SUB\0 a"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("S\0B a"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("\0"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("SUB\ra"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("SUB\r"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("SUB\va"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("SUB\xa0"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("\xd3UB a"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("SUB/a"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("+OK"), .err = PERR_UNKNOWN_COMMAND },
};

/* Too few or too many words, for every verb. */
static const struct parse_case arity_cases[] = {
	{ LINE("SUB"), .err = PERR_SYNTAX },
	{ LINE("SUB "), .err = PERR_SYNTAX },
	{ LINE("SUB a 1 2"), .err = PERR_SYNTAX },
	{ LINE("SUB a b c"), .err = PERR_SYNTAX },
	{ LINE("UNSUB"), .err = PERR_SYNTAX },
	{ LINE("UNSUB \t "), .err = PERR_SYNTAX },
	{ LINE("UNSUB a b"), .err = PERR_SYNTAX },
	{ LINE("UNSUB a 1"), .err = PERR_SYNTAX },
	{ LINE("GET"), .err = PERR_SYNTAX },
	{ LINE("GET a b"), .err = PERR_SYNTAX },
	{ LINE("PUB"), .err = PERR_SYNTAX },
	{ LINE("PUB "), .err = PERR_SYNTAX },
	{ LINE("PUB   "), .err = PERR_SYNTAX },
	{ LINE("PUB a"), .err = PERR_SYNTAX },
	{ LINE("PUB a "), .err = PERR_SYNTAX },
	{ LINE("PUB a\t"), .err = PERR_SYNTAX },
	{ LINE("SYNC x"), .err = PERR_SYNTAX },
	{ LINE("PING a b"), .err = PERR_SYNTAX },
	{ LINE("PING a b c"), .err = PERR_SYNTAX },
	{ LINE("AUTH"), .err = PERR_SYNTAX },
	{ LINE("AUTH  \t"), .err = PERR_SYNTAX },
	{ LINE("AUTH alice pass word"), .err = PERR_SYNTAX },
	{ LINE("STATS x"), .err = PERR_SYNTAX },
	{ LINE("QUIT now"), .err = PERR_SYNTAX },
	{ LINE("QUIT \0"), .err = PERR_SYNTAX },
	/* Right counts, with spare separators. */
	{ LINE("SUB a 1"), .verb = CMD_SUB, .name = "a", .has_since = 1,
	  .since = 1 },
	{ LINE("SYNC  "), .verb = CMD_SYNC },
	{ LINE("STATS\t"), .verb = CMD_STATS },
	{ LINE(" QUIT "), .verb = CMD_QUIT },
	{ LINE("UNSUB a "), .verb = CMD_UNSUB, .name = "a" },
	{ LINE("GET a\t"), .verb = CMD_GET, .name = "a" },
};

/* Words are separated by one or more spaces or tabs. */
static const struct parse_case sep_cases[] = {
	{ LINE("SUB\ta"), .verb = CMD_SUB, .name = "a" },
	{ LINE("SUB   a"), .verb = CMD_SUB, .name = "a" },
	{ LINE("SUB \t \ta"), .verb = CMD_SUB, .name = "a" },
	{ LINE("  SUB a"), .verb = CMD_SUB, .name = "a" },
	{ LINE("\tSUB a"), .verb = CMD_SUB, .name = "a" },
	{ LINE("SUB a  "), .verb = CMD_SUB, .name = "a" },
	{ LINE("SUB a \t"), .verb = CMD_SUB, .name = "a" },
	{ LINE("\t SUB\t\ta/b\t \t7\t "), .verb = CMD_SUB, .name = "a/b",
	  .has_since = 1, .since = 7 },
	{ LINE("GET\t\ta/b"), .verb = CMD_GET, .name = "a/b" },
	{ LINE("  PUB \t a/b x"), .verb = CMD_PUB, .name = "a/b",
	  PAYLOAD("x") },
	{ LINE("\tPUB\ta/b\tx"), .verb = CMD_PUB, .name = "a/b",
	  PAYLOAD("x") },
	{ LINE("PING \t tok \t"), .verb = CMD_PING, PAYLOAD("tok") },
	/* Other whitespace is part of a word. */
	{ LINE("SUB a\vb"), .err = PERR_BAD_PATTERN },
	{ LINE("SUB a\fb"), .err = PERR_BAD_PATTERN },
	{ LINE("GET a\rb"), .err = PERR_BAD_TOPIC },
	{ LINE("\rSUB a"), .err = PERR_UNKNOWN_COMMAND },
};

/* The PUB payload: one separator, then the rest of the line. */
static const struct parse_case payload_cases[] = {
	{ LINE("PUB a x"), .verb = CMD_PUB, .name = "a", PAYLOAD("x") },
	{ LINE("PUB a  x "), .verb = CMD_PUB, .name = "a", PAYLOAD(" x ") },
	{ LINE("PUB a\tx"), .verb = CMD_PUB, .name = "a", PAYLOAD("x") },
	{ LINE("PUB a\t\tx"), .verb = CMD_PUB, .name = "a", PAYLOAD("\tx") },
	{ LINE("PUB a \tx\t "), .verb = CMD_PUB, .name = "a",
	  PAYLOAD("\tx\t ") },
	{ LINE("PUB a hello world"), .verb = CMD_PUB, .name = "a",
	  PAYLOAD("hello world") },
	{ LINE("PUB a x\ty  z"), .verb = CMD_PUB, .name = "a",
	  PAYLOAD("x\ty  z") },
	{ LINE("PUB a/b 71.5"), .verb = CMD_PUB, .name = "a/b",
	  PAYLOAD("71.5") },
	{ LINE("PUB a SUB b"), .verb = CMD_PUB, .name = "a",
	  PAYLOAD("SUB b") },
	{ LINE("PUB a {\"k\": [1, 2]}"), .verb = CMD_PUB, .name = "a",
	  PAYLOAD("{\"k\": [1, 2]}") },
	{ LINE("PUB a \\x00"), .verb = CMD_PUB, .name = "a",
	  PAYLOAD("\\x00") },
	{ LINE("PUB a \x01\x7f\x80\xff"), .verb = CMD_PUB, .name = "a",
	  PAYLOAD("\x01\x7f\x80\xff") },
	/* A one-byte payload of whitespace is still a payload. */
	{ LINE("PUB a  "), .verb = CMD_PUB, .name = "a", PAYLOAD(" ") },
	{ LINE("PUB a \t"), .verb = CMD_PUB, .name = "a", PAYLOAD("\t") },
	{ LINE("PUB a\t "), .verb = CMD_PUB, .name = "a", PAYLOAD(" ") },
	/* Missing or empty payloads are words faults. */
	{ LINE("PUB a"), .err = PERR_SYNTAX },
	{ LINE("PUB a "), .err = PERR_SYNTAX },
	{ LINE("PUB a\t"), .err = PERR_SYNTAX },
	{ LINE("PUB  a "), .err = PERR_SYNTAX },
	/* Payload faults go to payload_err. */
	{ LINE("PUB a/b x\rY"), .verb = CMD_PUB, .name = "a/b",
	  PAYLOAD("x\rY"), .payload_err = PERR_BAD_PAYLOAD },
	{ LINE("PUB a/b \r"), .verb = CMD_PUB, .name = "a/b",
	  PAYLOAD("\r"), .payload_err = PERR_BAD_PAYLOAD },
	{ LINE("PUB a/b x\0y"), .verb = CMD_PUB, .name = "a/b",
	  PAYLOAD("x\0y"), .payload_err = PERR_BAD_PAYLOAD },
	{ LINE("PUB a/b \0"), .verb = CMD_PUB, .name = "a/b",
	  PAYLOAD("\0"), .payload_err = PERR_BAD_PAYLOAD },
	{ LINE("PUB a 12345678"), .max = 8, .verb = CMD_PUB, .name = "a",
	  PAYLOAD("12345678") },
	{ LINE("PUB a 123456789"), .max = 8, .verb = CMD_PUB, .name = "a",
	  PAYLOAD("123456789"), .payload_err = PERR_PAYLOAD_TOO_LARGE },
	{ LINE("PUB a  2345678"), .max = 8, .verb = CMD_PUB, .name = "a",
	  PAYLOAD(" 2345678") },
	{ LINE("PUB a  23456789"), .max = 8, .verb = CMD_PUB, .name = "a",
	  PAYLOAD(" 23456789"), .payload_err = PERR_PAYLOAD_TOO_LARGE },
	{ LINE("PUB a 1234\r6789"), .max = 8, .verb = CMD_PUB, .name = "a",
	  PAYLOAD("1234\r6789"), .payload_err = PERR_BAD_PAYLOAD },
	{ LINE("PUB a 12345678\0"), .max = 8, .verb = CMD_PUB, .name = "a",
	  PAYLOAD("12345678\0"), .payload_err = PERR_BAD_PAYLOAD },
	{ LINE("PUB a 1"), .max = 1, .verb = CMD_PUB, .name = "a",
	  PAYLOAD("1") },
	{ LINE("PUB a 12"), .max = 1, .verb = CMD_PUB, .name = "a",
	  PAYLOAD("12"), .payload_err = PERR_PAYLOAD_TOO_LARGE },
};

/* since: 1..20 digits, below 2^64. */
static const struct parse_case since_cases[] = {
	{ LINE("SUB a 0"), .verb = CMD_SUB, .name = "a", .has_since = 1,
	  .since = 0 },
	{ LINE("SUB a 1"), .verb = CMD_SUB, .name = "a", .has_since = 1,
	  .since = 1 },
	{ LINE("SUB a 00"), .verb = CMD_SUB, .name = "a", .has_since = 1,
	  .since = 0 },
	{ LINE("SUB a 42"), .verb = CMD_SUB, .name = "a", .has_since = 1,
	  .since = 42 },
	{ LINE("SUB a 00000000000000000001"), .verb = CMD_SUB, .name = "a",
	  .has_since = 1, .since = 1 },
	{ LINE("SUB a 00000000000000000000"), .verb = CMD_SUB, .name = "a",
	  .has_since = 1, .since = 0 },
	{ LINE("SUB a 4294967296"), .verb = CMD_SUB, .name = "a",
	  .has_since = 1, .since = 4294967296ULL },
	{ LINE("SUB a 18446744073709551614"), .verb = CMD_SUB, .name = "a",
	  .has_since = 1, .since = UINT64_MAX - 1 },
	{ LINE("SUB a 18446744073709551615"), .verb = CMD_SUB, .name = "a",
	  .has_since = 1, .since = UINT64_MAX },
	{ LINE("SUB a 18446744073709551616"), .err = PERR_SYNTAX },
	{ LINE("SUB a 18446744073709551620"), .err = PERR_SYNTAX },
	{ LINE("SUB a 19000000000000000000"), .err = PERR_SYNTAX },
	{ LINE("SUB a 99999999999999999999"), .err = PERR_SYNTAX },
	{ LINE("SUB a 100000000000000000000"), .err = PERR_SYNTAX },
	{ LINE("SUB a 000000000000000000001"), .err = PERR_SYNTAX },
	{ LINE("SUB a 000000000000000000000"), .err = PERR_SYNTAX },
	{ LINE("SUB a -1"), .err = PERR_SYNTAX },
	{ LINE("SUB a +1"), .err = PERR_SYNTAX },
	{ LINE("SUB a 1a"), .err = PERR_SYNTAX },
	{ LINE("SUB a a1"), .err = PERR_SYNTAX },
	{ LINE("SUB a 0x10"), .err = PERR_SYNTAX },
	{ LINE("SUB a 1.0"), .err = PERR_SYNTAX },
	{ LINE("SUB a 1e3"), .err = PERR_SYNTAX },
	{ LINE("SUB a 1\0"), .err = PERR_SYNTAX },
	{ LINE("SUB a \xd9"), .err = PERR_SYNTAX },
	{ LINE("SUB a /"), .err = PERR_SYNTAX },
	{ LINE("SUB a :"), .err = PERR_SYNTAX },
	{ LINE("SUB a \xef\xbc\x91"), .err = PERR_SYNTAX },	/* U+FF11 */
};

/* The first fault wins: verb, words, topic or pattern, then payload. */
static const struct parse_case order_cases[] = {
	{ LINE("FOO"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("FOO bad//topic"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("SUB"), .err = PERR_SYNTAX },
	{ LINE("SUB a/#/b"), .err = PERR_BAD_PATTERN },
	{ LINE("SUB a/#/b 5"), .err = PERR_BAD_PATTERN },
	{ LINE("SUB a/#/b x"), .err = PERR_SYNTAX },
	{ LINE("SUB a/#/b 1 2"), .err = PERR_SYNTAX },
	{ LINE("SUB a/#/b 18446744073709551616"), .err = PERR_SYNTAX },
	{ LINE("UNSUB a+"), .err = PERR_BAD_PATTERN },
	{ LINE("UNSUB a+ b"), .err = PERR_SYNTAX },
	{ LINE("SUB a/b/"), .err = PERR_BAD_PATTERN },
	{ LINE("GET a/+"), .err = PERR_BAD_TOPIC },
	{ LINE("GET #"), .err = PERR_BAD_TOPIC },
	{ LINE("GET a//b c"), .err = PERR_SYNTAX },
	{ LINE("GET a\0b"), .err = PERR_BAD_TOPIC },
	{ LINE("PUB bad//topic"), .err = PERR_SYNTAX },	/* no payload */
	{ LINE("PUB bad//topic "), .err = PERR_SYNTAX },
	{ LINE("PUB bad//topic x"), .err = PERR_BAD_TOPIC },
	{ LINE("PUB a/+ x"), .err = PERR_BAD_TOPIC },
	{ LINE("PUB a/# x"), .err = PERR_BAD_TOPIC },
	{ LINE("PUB a\0 x"), .err = PERR_BAD_TOPIC },
	{ LINE("PUB a\r x"), .err = PERR_BAD_TOPIC },
	{ LINE("PUB / \r"), .err = PERR_BAD_TOPIC },
	{ LINE("PUB a/+ 123456789"), .max = 8, .err = PERR_BAD_TOPIC },
	{ LINE("PUB a/b x\rY"), .verb = CMD_PUB, .name = "a/b",
	  PAYLOAD("x\rY"), .payload_err = PERR_BAD_PAYLOAD },
	{ LINE("PUB a/b 12345678\r"), .max = 4, .verb = CMD_PUB,
	  .name = "a/b", PAYLOAD("12345678\r"),
	  .payload_err = PERR_BAD_PAYLOAD },
	{ LINE("PUB a/b \r12345678"), .max = 4, .verb = CMD_PUB,
	  .name = "a/b", PAYLOAD("\r12345678"),
	  .payload_err = PERR_BAD_PAYLOAD },
	{ LINE("PUB a/b 12345678"), .max = 4, .verb = CMD_PUB,
	  .name = "a/b", PAYLOAD("12345678"),
	  .payload_err = PERR_PAYLOAD_TOO_LARGE },
	{ LINE("PING\0"), .err = PERR_UNKNOWN_COMMAND },
	{ LINE("PING \0"), .verb = CMD_PING, PAYLOAD("\0") },
};

/* PING with and without a token. */
static const struct parse_case ping_cases[] = {
	{ LINE("PING"), .verb = CMD_PING },
	{ LINE("PING "), .verb = CMD_PING },
	{ LINE("  PING\t\t"), .verb = CMD_PING },
	{ LINE("PING x"), .verb = CMD_PING, PAYLOAD("x") },
	{ LINE("PING 12345"), .verb = CMD_PING, PAYLOAD("12345") },
	{ LINE("ping\ttok "), .verb = CMD_PING, PAYLOAD("tok") },
	{ LINE("PING a/b/#"), .verb = CMD_PING, PAYLOAD("a/b/#") },
	{ LINE("PING x y"), .err = PERR_SYNTAX },
	{ LINE("PING x\ty"), .err = PERR_SYNTAX },
};

/* Blank lines are ignored. */
static const struct parse_case blank_cases[] = {
	{ LINE(""), .verb = CMD_NONE },
	{ LINE(" "), .verb = CMD_NONE },
	{ LINE("\t"), .verb = CMD_NONE },
	{ LINE("   \t \t  "), .verb = CMD_NONE },
};

#define TABLE_TEST(fn, table)						\
START_TEST(fn)								\
{									\
	check_case(&table[_i], _i);					\
}									\
END_TEST

TABLE_TEST(verb_table, verb_cases)
TABLE_TEST(arity_table, arity_cases)
TABLE_TEST(sep_table, sep_cases)
TABLE_TEST(payload_table, payload_cases)
TABLE_TEST(since_table, since_cases)
TABLE_TEST(order_table, order_cases)
TABLE_TEST(ping_table, ping_cases)
TABLE_TEST(blank_table, blank_cases)

/* The verb is reported as sent, for the detail of syntax errors. */
START_TEST(verb_as_sent)
{
	const char *line = "  sYnC extra";
	struct cmd c;

	ck_assert_int_eq(proto_parse(line, strlen(line), MAXPL, &c),
	    PERR_SYNTAX);
	ck_assert_int_eq(c.verb_len, 4);
	ck_assert_ptr_eq(c.verb_str, line + 2);

	line = "\tfrob x";
	ck_assert_int_eq(proto_parse(line, strlen(line), MAXPL, &c),
	    PERR_UNKNOWN_COMMAND);
	ck_assert_int_eq(c.verb_len, 4);
	ck_assert_ptr_eq(c.verb_str, line + 1);
}
END_TEST

/* The name is set for name faults, for the detail of bad-topic. */
START_TEST(name_on_fault)
{
	const char *line = "PUB bad//topic x";
	struct cmd c;

	ck_assert_int_eq(proto_parse(line, strlen(line), MAXPL, &c),
	    PERR_BAD_TOPIC);
	ck_assert_int_eq(c.name_len, 10);
	ck_assert_ptr_eq(c.name, line + 4);
	line = "SUB a/#/b";
	ck_assert_int_eq(proto_parse(line, strlen(line), MAXPL, &c),
	    PERR_BAD_PATTERN);
	ck_assert_int_eq(c.name_len, 5);
	ck_assert_ptr_eq(c.name, line + 4);
}
END_TEST

/* Parsing reads only line[0..len), and resets c every time. */
START_TEST(bounds_and_reset)
{
	const char *line = "PUB a/b xyz trailing";
	struct cmd c;

	ck_assert_int_eq(proto_parse(line, 11, MAXPL, &c), PERR_NONE);
	ck_assert_int_eq(c.payload_len, 3);
	ck_assert_ptr_eq(c.payload, line + 8);
	ck_assert_int_eq(proto_parse("SUB a 9 x", 7, MAXPL, &c), PERR_NONE);
	ck_assert_int_eq(c.has_since, 1);
	ck_assert(c.since == 9);
	ck_assert_int_eq(proto_parse("SUB a", 5, MAXPL, &c), PERR_NONE);
	ck_assert_int_eq(c.has_since, 0);
	ck_assert_int_eq(proto_parse("SYNC", 4, MAXPL, &c), PERR_NONE);
	ck_assert_int_eq(c.name_len, 0);
	ck_assert_int_eq(c.payload_len, 0);
	ck_assert_int_eq(c.payload_err, PERR_NONE);
	ck_assert_int_eq(proto_parse("   ", 3, MAXPL, &c), PERR_NONE);
	ck_assert_int_eq(c.verb, CMD_NONE);
	ck_assert_int_eq(proto_parse(NULL, 0, MAXPL, &c), PERR_NONE);
	ck_assert_int_eq(c.verb, CMD_NONE);
}
END_TEST

/* The longest payload: exactly max_payload bytes, then one more. */
START_TEST(big_payload)
{
	static char line[8 + MAXPL + 1];
	struct cmd c;

	memcpy(line, "PUB a/b ", 8);
	memset(line + 8, 'x', sizeof(line) - 8);
	ck_assert_int_eq(proto_parse(line, 8 + MAXPL, MAXPL, &c), PERR_NONE);
	ck_assert_int_eq(c.payload_len, MAXPL);
	ck_assert_int_eq(c.payload_err, PERR_NONE);
	ck_assert_int_eq(proto_parse(line, sizeof(line), MAXPL, &c),
	    PERR_NONE);
	ck_assert_int_eq(c.payload_len, MAXPL + 1);
	ck_assert_int_eq(c.payload_err, PERR_PAYLOAD_TOO_LARGE);
	line[sizeof(line) - 1] = '\0';
	ck_assert_int_eq(proto_parse(line, sizeof(line), MAXPL, &c),
	    PERR_NONE);
	ck_assert_int_eq(c.payload_err, PERR_BAD_PAYLOAD);
}
END_TEST

struct code_case {
	enum proto_err	 e;
	const char	*code;
	int		 bad;
};

static const struct code_case codes[] = {
	{ PERR_NONE, "", 0 },
	{ PERR_SYNTAX, "syntax", 1 },
	{ PERR_UNKNOWN_COMMAND, "unknown-command", 1 },
	{ PERR_LINE_TOO_LONG, "line-too-long", 1 },
	{ PERR_BAD_TOPIC, "bad-topic", 1 },
	{ PERR_BAD_PATTERN, "bad-pattern", 1 },
	{ PERR_BAD_PAYLOAD, "bad-payload", 1 },
	{ PERR_PAYLOAD_TOO_LARGE, "payload-too-large", 0 },
	{ PERR_FORBIDDEN, "forbidden", 0 },
	{ PERR_TOO_MANY_SUBS, "too-many-subs", 0 },
	{ PERR_NOT_SUBSCRIBED, "not-subscribed", 0 },
	{ PERR_NOT_FOUND, "not-found", 0 },
	{ PERR_BUSY, "busy", 0 },
	{ PERR_AUTH_REQUIRED, "auth-required", 1 },
	{ PERR_AUTH_FAILED, "auth-failed", 0 },
};

START_TEST(code_table)
{
	const struct code_case *cc = &codes[_i];

	ck_assert_str_eq(proto_err_code(cc->e), cc->code);
	ck_assert_int_eq(proto_err_is_bad(cc->e), cc->bad);
}
END_TEST

START_TEST(code_out_of_range)
{
	ck_assert_str_eq(proto_err_code((enum proto_err)(PERR_AUTH_FAILED + 1)), "");
	ck_assert_int_eq(proto_err_is_bad((enum proto_err)(PERR_AUTH_FAILED + 1)),
	    0);
}
END_TEST

/* Format into a buffer of buflen, check length and NUL, compare. */
static void
check_format(size_t buflen, enum proto_err e, const char *detail,
    size_t dlen, const char *want)
{
	char buf[512];
	size_t n;

	ck_assert(buflen <= sizeof(buf) - 1);
	memset(buf, '@', sizeof(buf));
	n = proto_format_err(buf, buflen, e, detail, dlen);
	ck_assert_msg(n == strlen(want), "length %zu, want %zu (%s)", n,
	    strlen(want), want);
	ck_assert_msg(memcmp(buf, want, n) == 0, "got \"%.*s\", want %s",
	    (int)n, buf, want);
	ck_assert_int_eq(buf[n], '\0');
	ck_assert_int_eq(buf[buflen], '@');	/* nothing past buflen */
}

#define FMT(len, e, d, want)	check_format(len, e, d, sizeof(d) - 1, want)

START_TEST(format_plain)
{
	FMT(64, PERR_BAD_TOPIC, "a//b", "-ERR bad-topic a//b\n");
	FMT(64, PERR_SYNTAX, "PUB", "-ERR syntax PUB\n");
	FMT(64, PERR_UNKNOWN_COMMAND, "frob", "-ERR unknown-command frob\n");
	FMT(64, PERR_NOT_FOUND, "a/b", "-ERR not-found a/b\n");
	FMT(64, PERR_LINE_TOO_LONG, "", "-ERR line-too-long\n");
	FMT(64, PERR_BUSY, "", "-ERR busy\n");
	FMT(64, PERR_FORBIDDEN, "x y", "-ERR forbidden x y\n");
}
END_TEST

START_TEST(format_escape)
{
	FMT(64, PERR_BAD_TOPIC, "a\\b", "-ERR bad-topic a\\x5cb\n");
	FMT(64, PERR_BAD_TOPIC, "a\0b", "-ERR bad-topic a\\x00b\n");
	FMT(64, PERR_BAD_TOPIC, "\x7f", "-ERR bad-topic \\x7f\n");
	FMT(64, PERR_BAD_TOPIC, "\xff", "-ERR bad-topic \\xff\n");
	FMT(64, PERR_BAD_TOPIC, "\x80", "-ERR bad-topic \\x80\n");
	FMT(64, PERR_BAD_TOPIC, "a\tb", "-ERR bad-topic a\\x09b\n");
	FMT(64, PERR_BAD_TOPIC, "a\rb\n", "-ERR bad-topic a\\x0db\\x0a\n");
	FMT(64, PERR_BAD_TOPIC, "\x1f \x20~", "-ERR bad-topic \\x1f  ~\n");
	FMT(64, PERR_BAD_TOPIC, "\xab\xcd\xef",
	    "-ERR bad-topic \\xab\\xcd\\xef\n");
}
END_TEST

/*
 * Small buffers: the line always ends with LF, fits with its NUL, and
 * the detail is cut before a character (or escape) that does not fit.
 */
START_TEST(format_truncate)
{
	/* "-ERR bad-topic " is 15 bytes; LF and NUL take 2 more. */
	FMT(18, PERR_BAD_TOPIC, "abc", "-ERR bad-topic a\n");
	FMT(19, PERR_BAD_TOPIC, "abc", "-ERR bad-topic ab\n");
	FMT(20, PERR_BAD_TOPIC, "abc", "-ERR bad-topic abc\n");
	FMT(21, PERR_BAD_TOPIC, "abc", "-ERR bad-topic abc\n");
	FMT(17, PERR_BAD_TOPIC, "abc", "-ERR bad-topic\n");
	FMT(18, PERR_BAD_TOPIC, "\\", "-ERR bad-topic\n");
	FMT(20, PERR_BAD_TOPIC, "\\", "-ERR bad-topic\n");
	FMT(21, PERR_BAD_TOPIC, "\\", "-ERR bad-topic \\x5c\n");
	FMT(21, PERR_BAD_TOPIC, "a\xff", "-ERR bad-topic a\n");
	FMT(22, PERR_BAD_TOPIC, "a\xff", "-ERR bad-topic a\\xff\n");
	FMT(22, PERR_BAD_TOPIC, "a\xff" "b", "-ERR bad-topic a\\xff\n");
	FMT(23, PERR_BAD_TOPIC, "a\xff" "b", "-ERR bad-topic a\\xffb\n");
	FMT(16, PERR_BAD_TOPIC, "abc", "-ERR bad-topic\n");
	/* Below the documented minimum of 64, still safe. */
	FMT(10, PERR_BAD_TOPIC, "abc", "-ERR bad\n");
	FMT(3, PERR_BAD_TOPIC, "abc", "-\n");
	FMT(2, PERR_BAD_TOPIC, "abc", "\n");
	FMT(1, PERR_BAD_TOPIC, "abc", "");
}
END_TEST

/* A long detail in a 64-byte buffer, every byte escaped. */
START_TEST(format_long)
{
	char detail[300], buf[65];
	size_t i, n;

	for (i = 0; i < sizeof(detail); i++)
		detail[i] = (char)(i % 2 ? 0xfe : 'z');
	for (size_t len = 0; len <= 64; len++) {
		memset(buf, '@', sizeof(buf));
		n = proto_format_err(buf, len, PERR_BAD_PAYLOAD, detail,
		    sizeof(detail));
		ck_assert(n < len || (len == 0 && n == 0));
		ck_assert(buf[len] == '@');
		if (len < 2)
			continue;
		ck_assert_int_eq(buf[n - 1], '\n');
		/* Only printable bytes before the LF; escapes whole. */
		for (i = 0; i + 1 < n; i++) {
			ck_assert(buf[i] >= 0x20 && buf[i] <= 0x7e);
			if (buf[i] == '\\')
				ck_assert(i + 4 < n && buf[i + 1] == 'x');
		}
	}
	n = proto_format_err(buf, 64, PERR_BAD_PAYLOAD, detail,
	    sizeof(detail));
	/* "-ERR bad-payload ", 9 times "z\xfe" (5 bytes each), the LF. */
	ck_assert_int_eq(n, 17 + 9 * 5 + 1);
	ck_assert(memcmp(buf, "-ERR bad-payload z\\xfez", 23) == 0);
}
END_TEST

START_TEST(escape_direct)
{
	char dst[16];

	ck_assert_int_eq(proto_escape(dst, sizeof(dst), "ab", 2), 2);
	ck_assert(memcmp(dst, "ab", 2) == 0);
	ck_assert_int_eq(proto_escape(dst, sizeof(dst), "\\\x01", 2), 8);
	ck_assert(memcmp(dst, "\\x5c\\x01", 8) == 0);
	ck_assert_int_eq(proto_escape(dst, 0, "ab", 2), 0);
	ck_assert_int_eq(proto_escape(dst, 3, "\x01", 1), 0);
	ck_assert_int_eq(proto_escape(dst, 4, "a\x01", 2), 1);
	ck_assert_int_eq(proto_escape(dst, 5, "a\x01", 2), 5);
	ck_assert_int_eq(proto_escape(dst, sizeof(dst), "", 0), 0);
	ck_assert_int_eq(proto_escape(dst, sizeof(dst), " ~", 2), 2);
}
END_TEST

static Suite *
protocol_suite(void)
{
	Suite *s = suite_create("protocol");
	TCase *tc;

	tc = tcase_create("verbs");
	tcase_add_loop_test(tc, verb_table, 0, NELEM(verb_cases));
	tcase_add_test(tc, verb_as_sent);
	suite_add_tcase(s, tc);

	tc = tcase_create("words");
	tcase_add_loop_test(tc, arity_table, 0, NELEM(arity_cases));
	tcase_add_loop_test(tc, sep_table, 0, NELEM(sep_cases));
	tcase_add_loop_test(tc, ping_table, 0, NELEM(ping_cases));
	tcase_add_loop_test(tc, blank_table, 0, NELEM(blank_cases));
	tcase_add_test(tc, bounds_and_reset);
	suite_add_tcase(s, tc);

	tc = tcase_create("payload");
	tcase_add_loop_test(tc, payload_table, 0, NELEM(payload_cases));
	tcase_add_test(tc, big_payload);
	suite_add_tcase(s, tc);

	tc = tcase_create("since");
	tcase_add_loop_test(tc, since_table, 0, NELEM(since_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("order");
	tcase_add_loop_test(tc, order_table, 0, NELEM(order_cases));
	tcase_add_test(tc, name_on_fault);
	suite_add_tcase(s, tc);

	tc = tcase_create("codes");
	tcase_add_loop_test(tc, code_table, 0, NELEM(codes));
	tcase_add_test(tc, code_out_of_range);
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_test(tc, format_plain);
	tcase_add_test(tc, format_escape);
	tcase_add_test(tc, format_truncate);
	tcase_add_test(tc, format_long);
	tcase_add_test(tc, escape_direct);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(protocol_suite());
	int failed;

	/* Each test in its own process, unless CK_FORK=no (for a debugger). */
	if (getenv("CK_FORK") == NULL)
		srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
