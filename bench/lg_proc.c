/*
 * The server's footprint from /proc: resident and proportional memory and
 * CPU time summed over a process and all its descendants (herald's master,
 * producer and workers; a peer's single process).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loadgen.h"

#define PROC_MAX	4096	/* processes scanned for descendants */

/* The parent pid of pid and its CPU seconds; -1 if it is gone. */
static int
proc_stat(int pid, int *ppid, double *cpu)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command name may hold spaces: fields start after the last ')' */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	if (sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	    ppid, &ut, &st) != 3)
		return -1;
	*cpu = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

/* Add the Rss and Pss of pid (smaps_rollup) to s. */
static void
proc_mem(int pid, struct proc_sample *s)
{
	char path[64], line[256];
	unsigned long long v;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "Rss: %llu", &v) == 1)
			s->rss_kb += v;
		else if (sscanf(line, "Pss: %llu", &v) == 1)
			s->pss_kb += v;
	}
	fclose(f);
}

/*
 * Sample the tree rooted at root: RSS, PSS and CPU summed over it.
 * Returns 0, or -1 if root is gone.
 */
int
proc_sample_tree(int root, struct proc_sample *s)
{
	static int pids[PROC_MAX], ppids[PROC_MAX];
	static double cpus[PROC_MAX];
	int n = 0, i, grew, ppid;
	char in[PROC_MAX];
	struct dirent *de;
	double cpu;
	DIR *d;

	memset(s, 0, sizeof(*s));
	if (root <= 0 || (d = opendir("/proc")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL && n < PROC_MAX) {
		int pid = atoi(de->d_name);

		if (pid > 0 && proc_stat(pid, &ppid, &cpu) == 0) {
			pids[n] = pid;
			ppids[n] = ppid;
			cpus[n++] = cpu;
		}
	}
	closedir(d);
	memset(in, 0, sizeof(in));
	for (i = 0; i < n; i++)
		in[i] = pids[i] == root;
	do {					/* close over parenthood */
		int j;

		grew = 0;
		for (i = 0; i < n; i++)
			for (j = 0; j < n && !in[i]; j++)
				if (in[j] && ppids[i] == pids[j])
					in[i] = grew = 1;
	} while (grew);
	for (i = 0; i < n; i++)
		if (in[i]) {
			s->cpu_s += cpus[i];
			s->nproc++;
			proc_mem(pids[i], s);
		}
	return s->nproc > 0 ? 0 : -1;
}

/* CPU seconds of the given processes (the load generator's own). */
double
proc_cpu_pids(const int *pids, int n)
{
	double sum = 0, cpu;
	int i, ppid;

	for (i = 0; i < n; i++)
		if (pids[i] > 0 && proc_stat(pids[i], &ppid, &cpu) == 0)
			sum += cpu;
	return sum;
}
