/* table.c: this process's registrations. Every change is also an event in
 * the ring (area.c), written under the table's lock, so the coordinator sees
 * them in the order they happened. */
#ifndef PC_TABLE_H
#define PC_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include "event.h"

int pc_table_hit(uintptr_t start, uintptr_t end);  /* lock-free; 1 if anything overlaps */
int pc_table_add(uintptr_t start, uintptr_t end, unsigned flags, size_t limit, uint64_t *key);
int pc_table_remove(uint64_t key, struct pc_hit *gone); /* 0 (gone: what it was) or -ENOENT */
int pc_table_valid(uint64_t key);                    /* 1, 0 or -EINVAL */
int pc_table_query(uint64_t key, uintptr_t *start, uintptr_t *end);
/* 0 or -ENOENT; export 0: not published. jt: the job table the export is in. */
int pc_table_set_export(uint64_t key, uint32_t export, uint32_t xgen, struct pc_jt *jt);
int pc_table_claim_export(uint64_t key, struct pc_hit *io); /* 1: it had one (io filled), 0: io's taken, -ENOENT */
/* Under the table lock: every export is handed to fn, then forgotten (a new coordinator). */
void pc_table_unpublish_all_locked(void (*fn)(const struct pc_hit *h, void *ctx), void *ctx);
void pc_table_announce_locked(void);                 /* under the lock: a REG event for each registration */
size_t pc_table_count(void);
/* Calls fn for every registration, in chunks copied out under the lock (fn runs unlocked). */
void pc_table_foreach(void (*fn)(uint64_t key, uintptr_t start, uintptr_t end, unsigned flags, void *ctx), void *ctx);
void pc_table_lock(void);
void pc_table_unlock(void);
void pc_table_reset_child(void);                     /* after fork, in the child */

/* What one call did to the table. Invalidated entries are removed and copied
 * to inval (callbacks run later, unlocked); FOLLOW entries are kept and copied
 * to follow. */
struct pc_hits {
	struct pc_hit *inval, *follow;
	size_t n_inval, n_follow, cap;
	struct pc_hit local[32];  /* room for small calls without a mapping */
	void *big; size_t big_bytes;
	uint32_t call;            /* the call's number in the ring's events */
	int published;            /* a hit was published: revoke its attachers in place */
};
void pc_table_apply(const struct pc_event *ev, int mremap_follow, uint32_t call, struct pc_hits *h);
/* Moves FOLLOW entries by delta once mremap succeeded. */
void pc_table_move(const struct pc_hits *h, uintptr_t old_start, uintptr_t new_start);
void pc_hits_release(struct pc_hits *h);

#endif
