# Benchmarks (included by the top Makefile.am; paths from the top directory).
# Files to ship that are not sources of a program (scripts, READMEs).
BENCH_DIST =
