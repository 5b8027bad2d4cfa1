/*
 * tests/fuzz/fuzz.h - what every libFuzzer target here shares.
 *
 * A target is one file, fuzz_NAME.c, defining LLVMFuzzerTestOneInput and
 * sb_fuzz_seeds(); its name goes on the list in tests/fuzz/CMakeLists.txt
 * and its seed corpus in tests/fuzz/corpus/NAME/. Run with
 * SB_FUZZ_WRITE_SEEDS=DIR, a target writes its seeds there and exits:
 * that is how the checked-in corpus was made.
 */
#ifndef SB_TESTS_FUZZ_H
#define SB_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Write the target's seeds with sb_fuzz_seed(). */
void sb_fuzz_seeds(const char *dir);

/* Optional set-up before the first input (a target that needs none defines it empty). */
void sb_fuzz_init(void);

static inline void sb_fuzz_seed(const char *dir, const char *name, const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "cannot write seed %s\n", path);
		exit(1);
	}
}

/* A seed whose first byte picks the target's mode, followed by doc. */
static inline void sb_fuzz_seed_mode(const char *dir, const char *name, uint8_t mode,
				     const void *doc, size_t n)
{
	uint8_t *buf = malloc(n + 1);

	if (!buf) {
		fprintf(stderr, "out of memory for seed %s\n", name);
		exit(1);
	}
	buf[0] = mode;
	memcpy(buf + 1, doc, n);
	sb_fuzz_seed(dir, name, buf, n + 1);
	free(buf);
}

/* A fuzzer-found condition the library promises never to produce. */
#define SB_FUZZ_CHECK(cond)                                                                        \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* One definition, in every target (static inline keeps it per target). */
#define SB_FUZZ_MAIN                                                                               \
	int LLVMFuzzerInitialize(int *argc, char ***argv)                                          \
	{                                                                                          \
		const char *dir = getenv("SB_FUZZ_WRITE_SEEDS");                                   \
		(void)argc;                                                                        \
		(void)argv;                                                                        \
		sb_fuzz_init();                                                                    \
		if (dir) {                                                                         \
			sb_fuzz_seeds(dir);                                                        \
			exit(0);                                                                   \
		}                                                                                  \
		return 0;                                                                          \
	}

#endif
