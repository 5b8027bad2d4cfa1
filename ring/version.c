/* ring/version.c - what this build of the library is and which regions it reads. */
#include <snapbridge/snapbridge.h>

#include "layout.h"

const char *sb_version(void)
{
	return SNAPBRIDGE_VERSION;
}

void sb_version_info(struct sb_version_info *out)
{
	if (!out)
		return;
	*out = (struct sb_version_info){
		.version = SNAPBRIDGE_VERSION,
		.major = SNAPBRIDGE_VERSION_MAJOR,
		.minor = SNAPBRIDGE_VERSION_MINOR,
		.patch = SNAPBRIDGE_VERSION_PATCH,
		.abi_major = SB_ABI_MAJOR,
		.abi_minor = SB_ABI_MINOR,
		.layout_hash = sb__layout_hash(),
	};
}
