# Reliability tests (included by the top Makefile.am): dead peers, limits,
# slow consumers.
RELIABILITY_TESTS =
