# Sanitizer, valgrind and short libFuzzer runs (included by the top
# Makefile.am).
SANITIZE_TESTS =
