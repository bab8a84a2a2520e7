/*
 * Replay for the fuzz targets without libFuzzer: each target linked with
 * this file runs LLVMFuzzerTestOneInput over the files and directories
 * named on its command line (make check replays the seed corpora so).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>

/*
 * Run the target over one file, read into a buffer of its exact size so
 * that an overread shows under a sanitizer.  Returns -1 on a read error.
 */
static int
run_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	size_t n;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL) {
		perror(path);
		return -1;
	}
	if (fstat(fileno(f), &st) == -1 ||
	    (buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1)) == NULL) {
		perror(path);
		fclose(f);
		return -1;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	if (n != (size_t)st.st_size) {
		fprintf(stderr, "%s: short read\n", path);
		free(buf);
		return -1;
	}
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

/* Run over every regular file of a directory; returns the count or -1. */
static int
run_dir(const char *dir)
{
	char path[4096];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int n = 0;

	if ((d = opendir(dir)) == NULL) {
		perror(dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
			continue;
		if (run_file(path) == -1) {
			n = -1;
			break;
		}
		n++;
	}
	closedir(d);
	return n;
}

/* Replay the files and directories named on the command line. */
int
main(int argc, char **argv)
{
	struct stat st;
	int i, n, total = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s file|dir ...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == -1) {
			perror(argv[i]);
			return 1;
		}
		n = S_ISDIR(st.st_mode) ? run_dir(argv[i]) :
		    run_file(argv[i]) == 0 ? 1 : -1;
		if (n == -1)
			return 1;
		total += n;
	}
	printf("%s: %d inputs ok\n", argv[0], total);
	return 0;
}
