/* area.c: the shared area (proto.h) and its event ring. Every event is
 * written under the table lock (one producer at a time, in the order of the
 * table's changes). */
#ifndef PC_AREA_H
#define PC_AREA_H

#include <stdint.h>
#include <sys/types.h>
#include "event.h"

struct pc_area_hdr;
/* A new area, not yet where events go; *fd stays open for the HELLO. NULL: *err says why. */
struct pc_area_hdr *pc_area_create(int *fd, int *err);
void pc_area_destroy(struct pc_area_hdr *a);
void pc_area_install(struct pc_area_hdr *a);         /* under the table lock: events go there from now on */
void pc_area_drop(void);                             /* the connection is gone: stop writing events */
void pc_area_reset_child(void);
/* Events. The caller holds the table lock (one producer at a time). */
void pc_emit(uint16_t type, uint16_t reason, uint32_t call, uint32_t flags, uint64_t key, uint64_t addr, uint64_t len);
void pc_emit_call(const struct pc_event *ev, uint32_t call, uint32_t flags, uint32_t ns, long result);
void pc_emit_fork(pid_t child);
void pc_emit_bye(int why);                           /* exit 0, exec 1 */
void pc_emit_revoked(const struct pc_hit *x, uint32_t call, const struct pc_revoked *r);
int pc_area_live(void);                              /* events have somewhere to go */
uint32_t pc_next_call(void);
/* Asks the coordinator to drain this process's events now (a full ring; exit under --audit). */
int pc_sync(uint32_t call);

#endif
