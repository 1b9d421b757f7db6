/*
 * bench_histogram.c - latency histograms that merge by adding (bench.h).
 *
 * Forked workers each record their own latencies; the runner adds their
 * bucket arrays, which is only possible with fixed buckets, so quantiles
 * over all workers are exact up to bucket width (under 1%) rather than an
 * average of per-worker quantiles.
 */
#include "bench.h"

static size_t bench_histogram_index(uint64_t value)
{
    if (value < BENCH_HISTOGRAM_LINEAR)
        return (size_t)value;
    int exponent = 63 - __builtin_clzll(value);
    if (exponent > BENCH_HISTOGRAM_MAX_EXPONENT)
        return BENCH_HISTOGRAM_BUCKETS - 1;
    uint64_t sub =
        (value >> (exponent - BENCH_HISTOGRAM_SUB_BITS)) & ((1u << BENCH_HISTOGRAM_SUB_BITS) - 1);
    return BENCH_HISTOGRAM_LINEAR + (size_t)(exponent - 10) * (1u << BENCH_HISTOGRAM_SUB_BITS) +
           (size_t)sub;
}

/* The middle of a bucket's range. */
static double bench_histogram_bucket_value(size_t index)
{
    if (index < BENCH_HISTOGRAM_LINEAR)
        return (double)index;
    size_t log_index = index - BENCH_HISTOGRAM_LINEAR;
    int exponent = 10 + (int)(log_index >> BENCH_HISTOGRAM_SUB_BITS);
    uint64_t sub = log_index & ((1u << BENCH_HISTOGRAM_SUB_BITS) - 1);
    int shift = exponent - BENCH_HISTOGRAM_SUB_BITS;
    double lower = (double)(((uint64_t)(1u << BENCH_HISTOGRAM_SUB_BITS) + sub) << shift);
    return lower + (double)(1ULL << shift) / 2.0;
}

void bench_histogram_record(struct bench_histogram *histogram, uint64_t value_ns)
{
    histogram->buckets[bench_histogram_index(value_ns)]++;
    histogram->count++;
    histogram->sum += (double)value_ns;
    if (value_ns > histogram->max)
        histogram->max = value_ns;
}

void bench_histogram_merge(struct bench_histogram *into, const struct bench_histogram *from)
{
    for (size_t index = 0; index < BENCH_HISTOGRAM_BUCKETS; index++)
        into->buckets[index] += from->buckets[index];
    into->count += from->count;
    into->sum += from->sum;
    if (from->max > into->max)
        into->max = from->max;
}

double bench_histogram_quantile(const struct bench_histogram *histogram, double q)
{
    if (histogram->count == 0)
        return 0;
    if (q >= 1.0)
        return (double)histogram->max;
    uint64_t rank = (uint64_t)(q * (double)histogram->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t index = 0; index < BENCH_HISTOGRAM_BUCKETS; index++) {
        seen += histogram->buckets[index];
        if (seen >= rank) {
            double value = bench_histogram_bucket_value(index);
            return value > (double)histogram->max ? (double)histogram->max : value;
        }
    }
    return (double)histogram->max;
}
