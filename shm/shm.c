#define _GNU_SOURCE
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../ring/error.h"

int sb__shm_create(const char *name, size_t size, int late_seals, struct sb_shm *out)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int err;

	if (fd < 0)
		return sb__fail(-errno, "memfd_create(%s): %s", name, strerror(errno));
	if (ftruncate(fd, (off_t)size) != 0) {
		err = sb__fail(-errno, "sizing memfd %s to %zu bytes: %s", name, size,
			       strerror(errno));
		goto fail;
	}
	/* Size is final before anyone maps it: readers never meet a shorter file. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
		err = sb__fail(-errno, "sealing memfd %s size: %s", name, strerror(errno));
		goto fail;
	}
	void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		err = sb__fail(-errno, "mapping memfd %s (%zu bytes): %s", name, size,
			       strerror(errno));
		goto fail;
	}
	/* Our writable mapping exists; for the data region nobody gets another one. */
	if (fcntl(fd, F_ADD_SEALS, late_seals) != 0) {
		err = sb__fail(-errno, "sealing memfd %s: %s", name, strerror(errno));
		munmap(map, size);
		goto fail;
	}
	out->fd = fd;
	out->map = map;
	out->size = size;
	return 0;
fail:
	close(fd);
	return err;
}

void sb__shm_destroy(struct sb_shm *shm)
{
	if (shm->map)
		munmap(shm->map, shm->size);
	if (shm->fd >= 0)
		close(shm->fd);
	shm->map = NULL;
	shm->fd = -1;
}

int sb__shm_ro_fd(const struct sb_shm *shm, int *fd_out)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", shm->fd);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sb__fail(-errno, "reopening the data memfd read-only via %s: %s", path,
				strerror(errno));
	*fd_out = fd;
	return 0;
}

int sb__shm_check_fd(int fd, uint64_t *size_out)
{
	struct stat st;

	if (fd < 0 || fstat(fd, &st) != 0)
		return sb__fail(-EBADF, "descriptor %d is not open", fd);
	if (!S_ISREG(st.st_mode))
		return sb__fail(-EBADF, "descriptor %d is not a memfd (not a regular file)", fd);
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return sb__fail(-EPERM, "descriptor %d does not support seals: not a memfd", fd);
	if ((seals & SB_SEALS_REQUIRED) != SB_SEALS_REQUIRED)
		return sb__fail(-EPERM,
				"descriptor %d lacks seals (has 0x%x, needs 0x%x: shrink, grow, "
				"seal, future-write)",
				fd, seals, SB_SEALS_REQUIRED);
	if ((uint64_t)st.st_size > SB_REGION_MAX)
		return sb__fail(-EFBIG, "region is %lld bytes, over the %llu-byte limit",
				(long long)st.st_size, SB_REGION_MAX);
	*size_out = (uint64_t)st.st_size;
	return 0;
}

int sb__shm_map_ro(int fd, size_t size, const void **out)
{
	void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);

	if (map == MAP_FAILED)
		return sb__fail(-errno, "mapping the region read-only (%zu bytes): %s", size,
				strerror(errno));
	*out = map;
	return 0;
}

int sb__shm_map_ctl(int fd, size_t size, void **out)
{
	struct stat st;

	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return sb__fail(-EBADF, "control descriptor %d is not a memfd", fd);
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & SB_CTL_SEALS) != SB_CTL_SEALS)
		return sb__fail(-EPERM,
				"control descriptor %d lacks seals (has 0x%x, needs 0x%x: shrink, "
				"grow, seal)",
				fd, seals < 0 ? 0 : seals, SB_CTL_SEALS);
	if ((uint64_t)st.st_size != size)
		return sb__fail(-EBADMSG, "control memfd is %lld bytes, expected %zu",
				(long long)st.st_size, size);
	if ((fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDWR)
		return sb__fail(-EBADF, "control descriptor %d is not open read-write", fd);
	void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return sb__fail(-errno, "mapping the control page: %s", strerror(errno));
	*out = map;
	return 0;
}

uint64_t sb__proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long start = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parens: count fields after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (p)
		sscanf(p, " %llu", &start);
	return start;
}
