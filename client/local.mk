# The client side (included by the top Makefile.am): libherald, herald(1),
# examples.  Paths are relative to the top directory.
CLIENT_TESTS =
