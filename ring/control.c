/*
 * ring/control.c - stamping and checking a consumer's control page.
 */
#include "control.h"

#include <errno.h>
#include <string.h>

#include "error.h"

void sb__ctl_init(struct sb_ctl *ctl)
{
	memcpy(ctl->hdr.magic, SB_CTL_MAGIC, sizeof(ctl->hdr.magic));
	ctl->hdr.abi_major = SB_ABI_MAJOR;
	ctl->hdr.abi_minor = SB_ABI_MINOR;
	ctl->hdr.size = SB_CTL_SIZE;
	ctl->hdr.layout_hash = sb__layout_hash();
}

int sb__ctl_validate(const struct sb_ctl *ctl)
{
	struct sb_ctl_header h;

	/* A private copy: the page is shared, and checked fields must not change under us. */
	memcpy(&h, &ctl->hdr, sizeof(h));
	if (memcmp(h.magic, SB_CTL_MAGIC, sizeof(h.magic)) != 0)
		return sb__fail(-EBADMSG, "control page has no SNAPCTRL magic: not a snapbridge "
					  "control memfd");
	if (h.abi_major != SB_ABI_MAJOR || h.layout_hash != sb__layout_hash())
		return sb__fail(-EPROTO,
				"control page is ABI %u.%u with layout %016llx; this build reads "
				"%u.x with layout %016llx",
				h.abi_major, h.abi_minor, (unsigned long long)h.layout_hash,
				SB_ABI_MAJOR, (unsigned long long)sb__layout_hash());
	if (h.size != SB_CTL_SIZE)
		return sb__fail(-EBADMSG, "control page claims %u bytes, not %u", h.size,
				SB_CTL_SIZE);
	return 0;
}
