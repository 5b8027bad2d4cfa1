/* ring/check.c - the library's bound check of untrusted msgpack, for its users. */
#include <errno.h>

#include <snapbridge/types.h>

#include "codec.h"
#include "error.h"

int sb_msgpack_check(const void *buf, size_t len)
{
	if (!buf && len)
		return sb__fail(-EINVAL, "sb_msgpack_check: NULL buffer");
	if (sb__msgpack_check(buf, len) != 0)
		return sb__fail(-EBADMSG, "not one well-formed msgpack object: %s",
				sb__msgpack_error());
	return 0;
}
