/*
 * Latency histogram: log-linear buckets of nanoseconds, HIST_SUB buckets per
 * power of two, so a quantile is within about 3 % of the true value.
 */
#include "loadgen.h"

/* The bucket of value v. */
static unsigned
bucket(uint64_t v)
{
	unsigned e;

	if (v < HIST_SUB)
		return (unsigned)v;
	e = 63 - (unsigned)__builtin_clzll(v);		/* v in [2^e, 2^e+1) */
	return (e - HIST_SUB_BITS + 1) * HIST_SUB +
	    (unsigned)((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

/* The upper bound of bucket i (the value a quantile reports). */
static uint64_t
bucket_top(unsigned i)
{
	unsigned e;

	if (i < HIST_SUB)
		return i;
	e = i / HIST_SUB + HIST_SUB_BITS - 1;
	return ((uint64_t)1 << e) +
	    ((uint64_t)(i % HIST_SUB + 1) << (e - HIST_SUB_BITS)) - 1;
}

/* Count one latency of v ns. */
void
hist_add(struct lg_hist *h, uint64_t v)
{
	unsigned i = bucket(v);

	if (i >= HIST_BUCKETS)
		i = HIST_BUCKETS - 1;
	h->b[i]++;
	h->n++;
}

/* Add the counts of b to a. */
void
hist_merge(struct lg_hist *a, const struct lg_hist *b)
{
	unsigned i;

	for (i = 0; i < HIST_BUCKETS; i++)
		a->b[i] += b->b[i];
	a->n += b->n;
}

/* Take the counts of b (an earlier copy of a) from a. */
void
hist_sub(struct lg_hist *a, const struct lg_hist *b)
{
	unsigned i;

	for (i = 0; i < HIST_BUCKETS; i++)
		a->b[i] -= b->b[i];
	a->n -= b->n;
}

/* The value below which a fraction q of the counts lie (0 if empty). */
uint64_t
hist_quantile(const struct lg_hist *h, double q)
{
	uint64_t want, seen = 0;
	unsigned i;

	if (h->n == 0)
		return 0;
	want = (uint64_t)(q * (double)h->n);
	if (want >= h->n)
		want = h->n - 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen > want)
			return bucket_top(i);
	}
	return bucket_top(HIST_BUCKETS - 1);
}
