/* policy.c: what a hooked call does to one overlapping registration. It calls nothing. */
#ifndef PC_POLICY_H
#define PC_POLICY_H

#include "event.h"

#define PC_ACT_KEEP 0
#define PC_ACT_INVALIDATE 1
#define PC_ACT_FOLLOW 2
int pc_policy(const struct pc_event *ev, uintptr_t rs, uintptr_t re, unsigned rflags, int mremap_follow);
int pc_advice_drops(int advice);

#endif
