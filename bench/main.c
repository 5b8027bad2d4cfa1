/* bench/main.c - snapbridge-bench, the same as `snapbridge bench`. */
#include "bench.h"

int main(int argc, char **argv)
{
	return sb_bench_main(argc, argv);
}
