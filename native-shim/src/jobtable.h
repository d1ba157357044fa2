/* jobtable.c: the job's shared table (proto.h), mapped read-only but for our
 * own segment. Owners revoke their attachers in place through it. */
#ifndef PC_JOBTABLE_H
#define PC_JOBTABLE_H

#include <stdint.h>
#include "event.h"
#include "proto.h"

struct pc_jt {
	const char *base;       /* the whole table, read-only */
	char *seg;              /* this member's segment, read-write */
	uint32_t size, members, exports, handles, links, seg_size;
	uint32_t member_off, head_off, link_off, seg_off;
	uint32_t member, member_word, coord_tid, revoke_ms;
};
int pc_jt_open(int coord_pid, const struct pc_welcome *w, struct pc_jt **out); /* maps it; -errno */
void pc_jt_install(struct pc_jt *jt);                /* under the table lock */
struct pc_jt *pc_jt_current(void);
void pc_jt_reset_child(void);
int pc_jt_export_alloc(struct pc_jt *jt, uint32_t *export, uint32_t *xgen); /* LIVE now */
uint32_t pc_jt_export_rearm(struct pc_jt *jt, uint32_t export);
void pc_jt_export_release(struct pc_jt *jt, uint32_t export);
int pc_jt_export_kill(struct pc_jt *jt, uint32_t export, uint32_t xgen, int reason); /* 1: it was live */
void pc_jt_revoke(struct pc_jt *jt, uint32_t export, uint32_t xgen, struct pc_revoked *r);
int pc_jt_valid_target(const struct pc_jt *jt, uint32_t owner, uint32_t export);
/* What a put checks after counting itself in flight: these words hold these values (plain loads, no branch but one). */
struct pc_watch { const uint32_t *word[4]; uint32_t want[4]; _Atomic uint32_t *inflight; };
void pc_jt_watch(struct pc_jt *jt, const struct pc_attached *a, uint32_t slot, struct pc_watch *w);
static inline int pc_jt_watched_live(const struct pc_watch *w)
{
	uint32_t diff = 0;
	for (int i = 0; i < 4; i++)
		diff |= __atomic_load_n(w->word[i], __ATOMIC_SEQ_CST) ^ w->want[i];
	return diff == 0;
}

#endif
