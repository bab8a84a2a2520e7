# Reliability tests (included by the top Makefile.am): dead peers, limits,
# slow consumers.
RELIABILITY_TESTS = \
	tests/integration/test_deadpeer.py \
	tests/integration/test_limits.py \
	tests/integration/test_slowconsumer.py
EXTRA_DIST += $(RELIABILITY_TESTS)
