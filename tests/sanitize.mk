# Sanitizer, valgrind and short libFuzzer runs (included by the top
# Makefile.am).  Each skips (77) inside the sanitized copy that asan-suite
# builds and tests.  They load the machine, so under make -j they take
# turns (a lock in tests/sanitize/) and wait for the integration tests to
# finish (wait_turn.py) rather than disturb their timing.
#
#   asan-suite            the whole project again with ASan+UBSan (gcc),
#                         then its unit and integration suites
#   fuzz-short            each libFuzzer target for a few seconds (clang)
#   valgrind-daemon.py    heraldd under memcheck through a short scenario
SANITIZE_TESTS = \
	tests/sanitize/valgrind-daemon.py \
	tests/sanitize/fuzz-short \
	tests/sanitize/asan-suite
SANITIZE_PENDING =
EXTRA_DIST += $(SANITIZE_TESTS) $(SANITIZE_PENDING) \
	tests/sanitize/wait_turn.py tests/sanitize/.gitignore

# The scratch trees they leave after a failure.
clean-local: clean-sanitize
clean-sanitize:
	-rm -rf tests/sanitize/build-asan tests/sanitize/build-asan.dist.log \
	    tests/sanitize/fuzz tests/sanitize/valgrind tests/sanitize/.lock
.PHONY: clean-sanitize
