/*
 * The built-in status source: this machine's figures (load, memory,
 * uptime) and heraldd's own (clients, messages), published by the
 * producer every status.interval seconds under status.prefix, so that
 * live status flows from the first minute.
 */
#include <stdio.h>
#include <string.h>

#include "bus.h"
#include "heraldd.h"

static void
put_u64(const char *name, unsigned long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", v);
	producer_publish_status(name, buf);
}

static void
publish_loadavg(void)
{
	double l1, l5, l15;
	FILE *f = fopen("/proc/loadavg", "r");
	char buf[32];

	if (f == NULL)
		return;
	if (fscanf(f, "%lf %lf %lf", &l1, &l5, &l15) == 3) {
		snprintf(buf, sizeof(buf), "%.2f", l1);
		producer_publish_status("load1", buf);
		snprintf(buf, sizeof(buf), "%.2f", l5);
		producer_publish_status("load5", buf);
		snprintf(buf, sizeof(buf), "%.2f", l15);
		producer_publish_status("load15", buf);
	}
	fclose(f);
}

static void
publish_meminfo(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	unsigned long long v;

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "MemTotal: %llu kB", &v) == 1)
			put_u64("mem/total_kb", v);
		else if (sscanf(line, "MemAvailable: %llu kB", &v) == 1)
			put_u64("mem/available_kb", v);
	}
	fclose(f);
}

static void
publish_uptime(void)
{
	FILE *f = fopen("/proc/uptime", "r");
	double up;

	if (f == NULL)
		return;
	if (fscanf(f, "%lf", &up) == 1)
		put_u64("uptime", (unsigned long long)up);
	fclose(f);
}

/* Append this machine's figures to the bus (producer only). */
void
status_publish(struct herald *h)
{
	publish_loadavg();
	publish_meminfo();
	publish_uptime();
	put_u64("herald/clients", bus_counter_sum(h->bus, CTR_CLIENTS));
	put_u64("herald/msgs_in", bus_counter_sum(h->bus, CTR_MSGS_IN));
	put_u64("herald/msgs_out", bus_counter_sum(h->bus, CTR_MSGS_OUT));
	put_u64("herald/gaps", bus_counter_sum(h->bus, CTR_GAPS));
}
