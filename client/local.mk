# The client side (included by the top Makefile.am): libherald, herald(1),
# examples.  Paths are relative to the top directory.

# --- libherald: installed with its header and a pkg-config file ----------
# Only herald_* is exported; the name rules are the daemon's own
# (common/topic.c), compiled in, and so is base64url (auth/b64url.c) to
# read a token's exp.
lib_LTLIBRARIES = client/libherald.la
include_HEADERS = client/herald.h
client_libherald_la_SOURCES = \
	client/lh.h \
	client/lh_addr.c \
	client/lh_client.c \
	client/lh_cmd.c \
	client/lh_conn.c \
	client/lh_event.c \
	client/lh_io.c \
	client/lh_loop.c \
	client/lh_proto.c \
	client/lh_reply.c \
	client/lh_sub.c \
	client/lh_tls.c \
	common/sockbio.c common/sockbio.h \
	client/lh_auth.c \
	client/lh_token.c \
	auth/b64url.c auth/b64url.h \
	common/topic.c common/topic.h
CLIENT_CPPFLAGS = -I$(top_srcdir)/client -I$(top_srcdir)/common \
	-I$(top_srcdir)/auth
client_libherald_la_CPPFLAGS = $(CLIENT_CPPFLAGS)
client_libherald_la_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) \
	$(OPENSSL_CFLAGS) $(JANSSON_CFLAGS)
client_libherald_la_LIBADD = $(LIBEVENT_LIBS) $(OPENSSL_LIBS) \
	$(JANSSON_LIBS)
# libtool's current:revision:age; the SONAME is libherald.so.(current - age).
# 1:0:0 is the first published ABI (the Debian package libherald1):
# bump it by libtool's rules on every release that changes the ABI.
client_libherald_la_LDFLAGS = -version-info 1:0:0 \
	-export-symbols-regex '^herald_'

pkgconfigdir = $(libdir)/pkgconfig
pkgconfig_DATA = client/libherald.pc
client/libherald.pc: $(top_srcdir)/client/libherald.pc.in Makefile
	$(AM_V_GEN)$(MKDIR_P) client && sed \
	    -e 's|@prefix[@]|$(prefix)|g' \
	    -e 's|@exec_prefix[@]|$(exec_prefix)|g' \
	    -e 's|@libdir[@]|$(libdir)|g' \
	    -e 's|@includedir[@]|$(includedir)|g' \
	    -e 's|@VERSION[@]|$(VERSION)|g' \
	    $(top_srcdir)/client/libherald.pc.in > $@.tmp && mv $@.tmp $@

# --- herald(1) ------------------------------------------------------------
bin_PROGRAMS = client/herald
client_herald_SOURCES = \
	client/cli.h \
	client/herald.c \
	client/cli_fmt.c \
	client/cli_pub.c \
	client/cli_stats.c \
	client/cli_sub.c \
	client/cli_auth.c \
	$(AUTH_USERS_SOURCES) $(AUTH_JWT_SOURCES) $(AUTH_BASE_SOURCES)
client_herald_CPPFLAGS = -I$(top_srcdir)/client -I$(top_srcdir)/auth \
	-I$(top_srcdir)/common
client_herald_CFLAGS = $(AM_CFLAGS) $(AUTH_CRYPTO_CFLAGS) $(AUTH_JWT_CFLAGS)
client_herald_LDADD = client/libherald.la $(AUTH_CRYPTO_LIBS) $(AUTH_JWT_LIBS)

# --- examples: built by make check, run by test_client.py -----------------
examples_herald_producer_SOURCES = examples/producer.c
examples_herald_producer_CPPFLAGS = -I$(top_srcdir)/client
examples_herald_producer_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
examples_herald_producer_LDADD = client/libherald.la $(LIBEVENT_LIBS)
examples_herald_watch_SOURCES = examples/watch.c
examples_herald_watch_CPPFLAGS = -I$(top_srcdir)/client
examples_herald_watch_CFLAGS = $(AM_CFLAGS)
examples_herald_watch_LDADD = client/libherald.la

# --- tests ------------------------------------------------------------------
# The library's own tests (Check): pure parts, and against the real daemon.
tests_unit_test_libherald_SOURCES = tests/unit/test_libherald.c \
	client/lh_addr.c client/lh_proto.c client/lh_token.c auth/b64url.c \
	common/topic.c
tests_unit_test_libherald_CPPFLAGS = $(CLIENT_CPPFLAGS)
tests_unit_test_libherald_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) \
	$(LIBEVENT_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_libherald_LDADD = client/libherald.la $(CHECK_LIBS) \
	$(LIBEVENT_LIBS) $(JANSSON_LIBS)

# test_client_sec.py's libherald subscriber (token refresh, TLS).
tests_integration_sec_client_SOURCES = tests/integration/sec_client.c
tests_integration_sec_client_CPPFLAGS = -I$(top_srcdir)/client
tests_integration_sec_client_LDADD = client/libherald.la

CLIENT_TESTS = tests/unit/test_libherald tests/integration/test_client.py

# Programs make check builds.  They belong in check_PROGRAMS; until the top
# Makefile.am adds $(CLIENT_CHECKS) there, EXTRA_PROGRAMS makes them
# known to automake and check_DATA builds them before the tests run.
CLIENT_CHECKS = tests/unit/test_libherald examples/herald-producer \
	examples/herald-watch tests/integration/sec_client
EXTRA_PROGRAMS = $(CLIENT_CHECKS)
check_DATA = $(CLIENT_CHECKS:=$(EXEEXT))

dist_man1_MANS = man/herald.1
dist_man3_MANS = man/libherald.3
dist_noinst_DATA = client/libherald.pc.in tests/integration/test_client.py
CLEANFILES = client/libherald.pc $(CLIENT_CHECKS:=$(EXEEXT))
