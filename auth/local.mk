# Authentication and authorization (auth/, included by the top Makefile.am):
# pure modules the daemon and herald(1) build on, with their unit tests and
# fuzz targets.  Paths are relative to the top directory.

# Names, permission lists, the ACL: no library beyond libc.
AUTH_ACL_SOURCES = \
	auth/textfile.c auth/textfile.h \
	auth/ident.c auth/ident.h \
	auth/perm.c auth/perm.h \
	auth/acl.c auth/acl.h \
	common/topic.c common/topic.h \
	common/protocol.c common/protocol.h
AUTH_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/auth

UNIT_TESTS += tests/unit/test_perm tests/unit/test_acl
FUZZ_REPLAY += tests/fuzz/fuzz_acl

tests_unit_test_perm_SOURCES = tests/unit/test_perm.c \
	tests/unit/universe.c tests/unit/universe.h $(AUTH_ACL_SOURCES)
tests_unit_test_perm_CPPFLAGS = $(AUTH_CPPFLAGS)
tests_unit_test_perm_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_perm_LDADD = $(CHECK_LIBS)
tests_unit_test_acl_SOURCES = tests/unit/test_acl.c $(AUTH_ACL_SOURCES)
tests_unit_test_acl_CPPFLAGS = $(AUTH_CPPFLAGS)
tests_unit_test_acl_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_acl_LDADD = $(CHECK_LIBS)
tests_fuzz_fuzz_acl_SOURCES = tests/fuzz/fuzz_acl.c tests/fuzz/standalone.c \
	$(AUTH_ACL_SOURCES)
tests_fuzz_fuzz_acl_CPPFLAGS = $(AUTH_CPPFLAGS)
