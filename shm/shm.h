/*
 * shm/shm.h - memfd regions: create, size once, seal, map read-write for
 * the coordinator, hand out read-only descriptors, and check a
 * descriptor received from elsewhere before mapping it.
 *
 * Every memfd is sealed F_SEAL_SHRINK|F_SEAL_GROW before it is mapped
 * (so nobody can ever fault on a truncated page). The data memfd then
 * gets F_SEAL_FUTURE_WRITE (no new writable mapping or write() from
 * anyone) and F_SEAL_SEAL once the coordinator holds its writable
 * mapping; the control memfd gets only F_SEAL_SEAL, as consumers write it.
 */
#ifndef SB_SHM_H
#define SB_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SB_SEALS_REQUIRED (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL | F_SEAL_FUTURE_WRITE)
#define SB_CTL_SEALS	  (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* The largest region a reader will map. */
#define SB_REGION_MAX (4ull << 30)

struct sb_shm {
	int fd;
	void *map;
	size_t size;
};

/*
 * Create, size, seal and map a memfd read-write. late_seals are added
 * once it is mapped: F_SEAL_FUTURE_WRITE|F_SEAL_SEAL for the data region,
 * F_SEAL_SEAL for the control page.
 */
int sb__shm_create(const char *name, size_t size, int late_seals, struct sb_shm *out);

void sb__shm_destroy(struct sb_shm *shm);

/* A new O_RDONLY descriptor of the same memfd (a fresh open file description). */
int sb__shm_ro_fd(const struct sb_shm *shm, int *fd_out);

/*
 * Check that fd is a memfd carrying every seal in SB_SEALS_REQUIRED and
 * return its size. -EBADF, -EPERM (seals missing), -EFBIG.
 */
int sb__shm_check_fd(int fd, uint64_t *size_out);

/* Map size bytes of fd PROT_READ, MAP_SHARED. */
int sb__shm_map_ro(int fd, size_t size, const void **out);

/*
 * Check a control memfd received from a coordinator (open read-write,
 * sealed SB_CTL_SEALS, exactly size bytes) and map it read-write.
 */
int sb__shm_map_ctl(int fd, size_t size, void **out);

/* The start time of pid (field 22 of /proc/PID/stat), 0 if it is gone. */
uint64_t sb__proc_start_time(pid_t pid);

#endif
