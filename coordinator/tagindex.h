/*
 * coordinator/tagindex.h - tag -> slot, an RCU hash table (liburcu
 * cds_lfht, bulletproof flavour so no thread has to register).
 *
 * Writers (add, del, clear) run under the bridge lock; lookups from any
 * thread take only the RCU read lock. Deleted nodes are reused once no
 * reader can still hold them: they are handed to call_rcu in batches of
 * SB_TAGINDEX_RETIRE_BATCH, because each call_rcu costs the storing
 * thread a full memory barrier (liburcu checks whether its worker sleeps),
 * which was a tenth of a unique-tag store (docs/BENCHMARKS.md).
 */
#ifndef SB_COORD_TAGINDEX_H
#define SB_COORD_TAGINDEX_H

#include <ck_stack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cds_lfht;
struct sb_tagnode;

#define SB_TAGINDEX_RETIRE_BATCH 32

struct sb_tagindex {
	struct cds_lfht *ht;
	/* Unlinked nodes not yet handed to call_rcu (under the bridge lock). */
	struct sb_tagnode *retired;
	uint32_t nretired;
	/*
	 * Nodes whose grace period has passed, kept for reuse: call_rcu frees
	 * in its own thread, and handing memory back to the storing thread's
	 * malloc from there costs more than the whole lookup. A lock-free
	 * stack (ck_stack, generation-counted pop, so no ABA): a mutex here
	 * made the storing thread sleep on the call_rcu thread. Nodes are
	 * never freed before sb__tagindex_fini(), which is what makes a
	 * concurrent pop's read of a popped node safe; their number is the
	 * peak of resident plus retired plus not-yet-reclaimed tags.
	 */
	struct ck_stack spare __attribute__((aligned(16)));
};

int sb__tagindex_init(struct sb_tagindex *idx, uint32_t capacity);
void sb__tagindex_fini(struct sb_tagindex *idx);

uint64_t sb__tag_hash(const char *tag, size_t len);

/* The slot of tag, or -1. Any thread; takes the RCU read lock itself. */
int64_t sb__tagindex_find(struct sb_tagindex *idx, const char *tag, size_t len, uint64_t hash);

/*
 * The writer's calls, made under the bridge lock and inside one RCU
 * read-side section (sb__rcu_enter/leave) that spans the whole store, so
 * a store pays for the read lock once.
 */
void sb__rcu_enter(void);
void sb__rcu_leave(void);
struct sb_tagnode *sb__tagindex_find_held(struct sb_tagindex *idx, const char *tag, size_t len,
					  uint64_t hash);
uint32_t sb__tagnode_slot(const struct sb_tagnode *node);

/* A node for sb__tagindex_add(), taken before the bridge lock; NULL on ENOMEM. */
struct sb_tagnode *sb__tagnode_new(struct sb_tagindex *idx);
/* Give back a node that never entered the table. */
void sb__tagnode_put(struct sb_tagindex *idx, struct sb_tagnode *node);

/* Inside sb__rcu_enter(); the index owns node afterwards. */
void sb__tagindex_add_held(struct sb_tagindex *idx, struct sb_tagnode *node, const char *tag,
			   size_t len, uint64_t hash, uint32_t slot);
/* Inside sb__rcu_enter(): unlink node; it is reused once no reader can hold it. */
void sb__tagindex_del_held(struct sb_tagindex *idx, struct sb_tagnode *node);
void sb__tagindex_clear(struct sb_tagindex *idx);

#endif
