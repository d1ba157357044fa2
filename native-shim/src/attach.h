/* attach.c: handles on other processes' exports, and put/get over them */
#ifndef PC_ATTACH_H
#define PC_ATTACH_H

#include <stdint.h>
#include "proto.h"

#define PC_MAX_ATTACH PC_HANDLE_SLOTS
struct pc_jt;
int pc_attach_alloc(uint64_t *handle);
void pc_attach_set(uint64_t handle, struct pc_jt *jt, const struct pc_attached *a);
void pc_attach_free(uint64_t handle);
void pc_attach_kill_all(void);                       /* the connection is gone: every handle dies here */
void pc_attach_reset_child(void);

#endif
