# Authentication and authorization (auth/, included by the top Makefile.am):
# pure modules the daemon and herald(1) build on, with their unit tests and
# fuzz targets.  Paths are relative to the top directory.

# What every module builds on: the line reader, user names, topics.
AUTH_BASE_SOURCES = \
	auth/textfile.c auth/textfile.h \
	auth/ident.c auth/ident.h \
	common/topic.c common/topic.h \
	common/protocol.c common/protocol.h
# Permission lists and the ACL: no library beyond libc.
AUTH_ACL_SOURCES = auth/perm.c auth/perm.h auth/acl.c auth/acl.h \
	$(AUTH_BASE_SOURCES)
AUTH_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/auth

# The users file and password checks: libxcrypt and OpenSSL's libcrypto.
AUTH_USERS_SOURCES = auth/users.c auth/users.h
AUTH_CRYPTO_CFLAGS = $(OPENSSL_CFLAGS) $(LIBCRYPT_CFLAGS)
AUTH_CRYPTO_LIBS = $(OPENSSL_LIBS) $(LIBCRYPT_LIBS)

UNIT_TESTS += tests/unit/test_perm tests/unit/test_acl tests/unit/test_users \
	tests/unit/test_grant
FUZZ_REPLAY += tests/fuzz/fuzz_acl tests/fuzz/fuzz_users

tests_unit_test_perm_SOURCES = tests/unit/test_perm.c \
	tests/unit/universe.c tests/unit/universe.h $(AUTH_ACL_SOURCES)
tests_unit_test_perm_CPPFLAGS = $(AUTH_CPPFLAGS)
tests_unit_test_perm_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_perm_LDADD = $(CHECK_LIBS)
tests_unit_test_grant_SOURCES = tests/unit/test_grant.c \
	worker/grant.c worker/grant.h $(AUTH_ACL_SOURCES)
tests_unit_test_grant_CPPFLAGS = $(AUTH_CPPFLAGS)
tests_unit_test_grant_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_grant_LDADD = $(CHECK_LIBS)
tests_unit_test_acl_SOURCES = tests/unit/test_acl.c $(AUTH_ACL_SOURCES)
tests_unit_test_acl_CPPFLAGS = $(AUTH_CPPFLAGS)
tests_unit_test_acl_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_acl_LDADD = $(CHECK_LIBS)
tests_fuzz_fuzz_acl_SOURCES = tests/fuzz/fuzz_acl.c tests/fuzz/standalone.c \
	$(AUTH_ACL_SOURCES)
tests_fuzz_fuzz_acl_CPPFLAGS = $(AUTH_CPPFLAGS)

tests_unit_test_users_SOURCES = tests/unit/test_users.c \
	$(AUTH_USERS_SOURCES) $(AUTH_BASE_SOURCES)
tests_unit_test_users_CPPFLAGS = $(AUTH_CPPFLAGS)
tests_unit_test_users_CFLAGS = $(UNIT_CFLAGS) $(AUTH_CRYPTO_CFLAGS)
tests_unit_test_users_LDADD = $(CHECK_LIBS) $(AUTH_CRYPTO_LIBS)
tests_fuzz_fuzz_users_SOURCES = tests/fuzz/fuzz_users.c \
	tests/fuzz/standalone.c $(AUTH_USERS_SOURCES) $(AUTH_BASE_SOURCES)
tests_fuzz_fuzz_users_CPPFLAGS = $(AUTH_CPPFLAGS)
tests_fuzz_fuzz_users_CFLAGS = $(AM_CFLAGS) $(AUTH_CRYPTO_CFLAGS)
tests_fuzz_fuzz_users_LDADD = $(AUTH_CRYPTO_LIBS)

# Tokens: base64url, the checker and the signer; jansson and libcrypto.
AUTH_JWT_SOURCES = auth/b64url.c auth/b64url.h auth/jwt.c auth/jwt.h \
	auth/jwt_sign.c auth/jwt_sign.h auth/perm.c auth/perm.h
AUTH_JWT_CFLAGS = $(OPENSSL_CFLAGS) $(JANSSON_CFLAGS)
AUTH_JWT_LIBS = $(OPENSSL_LIBS) $(JANSSON_LIBS)

UNIT_TESTS += tests/unit/test_jwt
FUZZ_REPLAY += tests/fuzz/fuzz_jwt
tests_unit_test_jwt_SOURCES = tests/unit/test_jwt.c \
	$(AUTH_JWT_SOURCES) $(AUTH_BASE_SOURCES)
tests_unit_test_jwt_CPPFLAGS = $(AUTH_CPPFLAGS)
tests_unit_test_jwt_CFLAGS = $(UNIT_CFLAGS) $(AUTH_JWT_CFLAGS)
tests_unit_test_jwt_LDADD = $(CHECK_LIBS) $(AUTH_JWT_LIBS)
tests_fuzz_fuzz_jwt_SOURCES = tests/fuzz/fuzz_jwt.c tests/fuzz/standalone.c \
	$(AUTH_JWT_SOURCES) $(AUTH_BASE_SOURCES)
tests_fuzz_fuzz_jwt_CPPFLAGS = $(AUTH_CPPFLAGS)
tests_fuzz_fuzz_jwt_CFLAGS = $(AM_CFLAGS) $(AUTH_JWT_CFLAGS)
tests_fuzz_fuzz_jwt_LDADD = $(AUTH_JWT_LIBS)

# herald passwd and herald token, checked with these modules.
AUTH_CHECK_PROGS = tests/integration/auth_check
tests_integration_auth_check_SOURCES = tests/integration/auth_check.c \
	$(AUTH_USERS_SOURCES) $(AUTH_JWT_SOURCES) $(AUTH_BASE_SOURCES)
tests_integration_auth_check_CPPFLAGS = $(AUTH_CPPFLAGS)
tests_integration_auth_check_CFLAGS = $(AM_CFLAGS) $(AUTH_CRYPTO_CFLAGS) \
	$(AUTH_JWT_CFLAGS)
tests_integration_auth_check_LDADD = $(AUTH_CRYPTO_LIBS) $(AUTH_JWT_LIBS)
