# Benchmarks (included by the top Makefile.am; paths from the top directory).
# loadgen: the load generator of issue #7 (bench/README.md).
noinst_PROGRAMS += bench/loadgen
bench_loadgen_SOURCES = bench/loadgen.c bench/loadgen.h bench/lg_sub.c \
	bench/lg_pub.c bench/lg_wire.c bench/lg_hist.c bench/lg_proc.c \
	bench/lg_tls.c bench/lg_ws.c
bench_loadgen_CFLAGS = $(AM_CFLAGS) -O2 $(OPENSSL_CFLAGS)
bench_loadgen_LDADD = $(OPENSSL_LIBS) $(WSLAY_LIBS) -lm

# Files to ship that are not sources of a program (scripts, READMEs).
BENCH_DIST = bench/README.md bench/compare bench/tune bench/install-peers \
	bench/soak bench/README-soak.md bench/results-2026-11-28.md \
	bench/results-2026-11-29.md bench/results-2026-12-04.md bench/tls-bench \
	bench/results-2026-12-05.md bench/results-2026-12-05-web.md \
	bench/upgrade bench/results-2026-12-05-upgrade.md
