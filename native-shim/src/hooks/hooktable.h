/* The hooks over mappings, as one table (as UCX's ucm does with UCM_DEFINE_*).
 * A row says:
 *   name     libc's function, and the system call of that name
 *   type     what it returns
 *   failed   the value it fails with (pc_slow_call keeps errno by it)
 *   why      PINCOH_REASON_why of its events
 *   real     PC_SYSCALL (stubbed out in the bench-only build, real.h) or
 *            syscall (real in every build: programs need their mappings)
 *   chained  1: libc's entry is patched (patch.c) and, where another
 *            interposer was there first, the real call is its hook (pc_chain)
 *   params   ((type, name), ...): the parameters, also the real call's arguments
 *   event    the pc_event's fields beyond reason, start and end
 *   extra    parameters of the slow call beyond the range, ( , uintptr_t x) or ()
 *   entry    the range rule of the generated entry: (start, length, passes by,
 *            skips): a call `passes by` (before the range) or `skips` (after)
 *            goes straight to the real call; else one over a registration
 *            takes the slow call. () for an entry written in its own file:
 *            mprotect (another interposer's writes over our patches come
 *            first) and mremap (variadic; a second range with MREMAP_FIXED).
 * From a row come pc_orig_NAME (the real call), struct NAME_args and
 * NAME_real (the arguments packed for pc_slow_call and the real call made
 * from them), NAME_slow (the event built, off the fast path), the exported
 * entry, pc_chain's slot (patch.h) and patch.c's entry (init.c). A hook's
 * file instantiates its row: PC_HOOK_name(PC_DEFINE_CALLS), and
 * PC_HOOK_name(PC_DEFINE_ENTRY) unless it writes its own. Adding a hook is
 * a row here, its name in PC_HOOKS, and a file with those two lines.
 *
 * Only types and macros: patch.h reads the table for pc_chain. */
#ifndef PC_HOOKTABLE_H
#define PC_HOOKTABLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PC_HOOK_munmap(X) X(munmap, int, -1, MUNMAP, PC_SYSCALL, 1, \
	((void *, addr), (size_t, len)), \
	(.len = len), (), \
	(addr, len, 0, 0))
#define PC_HOOK_mremap(X) X(mremap, void *, (long)MAP_FAILED, MREMAP, PC_SYSCALL, 1, \
	((void *, old), (size_t, old_len), (size_t, new_len), (int, flags), (void *, new_addr)), \
	(.arg = flags, .len = old_len, .new_len = new_len, .dest = ds, .dest_end = de), (, uintptr_t ds, uintptr_t de), \
	())
#define PC_HOOK_madvise(X) X(madvise, int, -1, MADVISE, syscall, 1, \
	((void *, addr), (size_t, len), (int, advice)), \
	(.arg = advice, .len = len), (), \
	(addr, len, !pc_advice_drops(advice), exiting_thread_stack(e, advice)))
#define PC_HOOK_mmap(X) X(mmap, void *, (long)MAP_FAILED, MMAP, syscall, 1, \
	((void *, addr), (size_t, len), (int, prot), (int, flags), (int, fd), (off_t, off)), \
	(.arg = flags, .len = len), (), \
	(addr, len, !(flags & MAP_FIXED) || (flags & MAP_FIXED_NOREPLACE) == MAP_FIXED_NOREPLACE, 0))
#define PC_HOOK_mprotect(X) X(mprotect, int, -1, MPROTECT, PC_SYSCALL, 0, \
	((void *, addr), (size_t, len), (int, prot)), \
	(.arg = prot, .len = len), (), \
	())

/* Every row, in patch.c's order. */
#define PC_HOOKS(X) PC_HOOK_munmap(X) PC_HOOK_mremap(X) PC_HOOK_madvise(X) PC_HOOK_mmap(X) PC_HOOK_mprotect(X)
/* libc's entries patched whose hook is no row: sbrk (hooks/brk.c: malloc's main-heap trim). (name, type, params) */
#define PC_HOOKS_PATCHED_ONLY(Y) Y(sbrk, void *, ((intptr_t, incr)))

/* ---- the machinery: lists of up to 6 (type, name) pairs ---- */
#define PC_UNPAREN(...) __VA_ARGS__
#define PC_CAT(a, b) PC_CAT_(a, b)
#define PC_CAT_(a, b) a##b
#define PC_APPLY(m, ...) m(__VA_ARGS__)
#define PC_NARGS(...) PC_NARGS_(__VA_ARGS__, 6, 5, 4, 3, 2, 1, 0)
#define PC_NARGS_(_1, _2, _3, _4, _5, _6, n, ...) n
#define PC_LIST(m, ...) PC_CAT(PC_LIST_, PC_NARGS(__VA_ARGS__))(m, __VA_ARGS__) /* m each, commas between */
#define PC_LIST_1(m, a) m a
#define PC_LIST_2(m, a, ...) m a, PC_LIST_1(m, __VA_ARGS__)
#define PC_LIST_3(m, a, ...) m a, PC_LIST_2(m, __VA_ARGS__)
#define PC_LIST_4(m, a, ...) m a, PC_LIST_3(m, __VA_ARGS__)
#define PC_LIST_5(m, a, ...) m a, PC_LIST_4(m, __VA_ARGS__)
#define PC_LIST_6(m, a, ...) m a, PC_LIST_5(m, __VA_ARGS__)
#define PC_SEQ(m, ...) PC_CAT(PC_SEQ_, PC_NARGS(__VA_ARGS__))(m, __VA_ARGS__)   /* m each, nothing between */
#define PC_SEQ_1(m, a) m a
#define PC_SEQ_2(m, a, ...) m a PC_SEQ_1(m, __VA_ARGS__)
#define PC_SEQ_3(m, a, ...) m a PC_SEQ_2(m, __VA_ARGS__)
#define PC_SEQ_4(m, a, ...) m a PC_SEQ_3(m, __VA_ARGS__)
#define PC_SEQ_5(m, a, ...) m a PC_SEQ_4(m, __VA_ARGS__)
#define PC_SEQ_6(m, a, ...) m a PC_SEQ_5(m, __VA_ARGS__)
#define PC_P_DECL(t, n) t n
#define PC_P_TYPE(t, n) t
#define PC_P_NAME(t, n) n
#define PC_P_FIELD(t, n) t n;
#define PC_P_FROM(t, n) a->n
#define PC_IF_0(...)
#define PC_IF_1(...) __VA_ARGS__

/* pc_chain's slot of a chained row (patch.h) */
#define PC_CHAIN_SLOT(name, type, failed, why, real, chained, params, ...) \
	PC_IF_##chained(type (*name)(PC_LIST(PC_P_TYPE, PC_UNPAREN params));)
#define PC_CHAIN_SLOT_PATCHED_ONLY(name, type, params) type (*name)(PC_LIST(PC_P_TYPE, PC_UNPAREN params));

/* ---- what a hook's file instantiates (it includes real.h, patch.h, runtime.h, slowpath.h, table.h) ---- */

/* pc_orig_NAME, struct NAME_args, NAME_real, NAME_slow */
#define PC_DEFINE_CALLS(name, type, failed, why, real, chained, params, event, extra, entry)             \
	static type pc_orig_##name(PC_LIST(PC_P_DECL, PC_UNPAREN params))                                   \
	{                                                                                                   \
		PC_IF_##chained(if (PC_CHAINED(name))                                                       \
			return PC_CHAIN_CALL(name, PC_LIST(PC_P_NAME, PC_UNPAREN params));)                 \
		return (type)real(SYS_##name, PC_LIST(PC_P_NAME, PC_UNPAREN params));                       \
	}                                                                                                   \
	struct name##_args { PC_SEQ(PC_P_FIELD, PC_UNPAREN params) };                                       \
	static long name##_real(void *p)                                                                    \
	{                                                                                                   \
		struct name##_args *a = p;                                                                  \
		return (long)pc_orig_##name(PC_LIST(PC_P_FROM, PC_UNPAREN params));                         \
	}                                                                                                   \
	/* The event and arguments are built here, off the fast path. */                                    \
	__attribute__((noinline, cold)) static type name##_slow(PC_LIST(PC_P_DECL, PC_UNPAREN params),      \
								 uintptr_t s, uintptr_t e PC_UNPAREN extra) \
	{                                                                                                   \
		struct pc_event ev = { .reason = PINCOH_REASON_##why, .start = s, .end = e, PC_UNPAREN event }; \
		struct name##_args a = { PC_LIST(PC_P_NAME, PC_UNPAREN params) };                           \
		return (type)pc_slow_call(&ev, name##_real, &a, failed);                                    \
	}

/* The exported entry, by the row's range rule. */
#define PC_DEFINE_ENTRY(name, type, failed, why, real, chained, params, event, extra, entry) \
	PC_APPLY(PC_DEFINE_ENTRY_, name, type, params, PC_UNPAREN entry)
#define PC_DEFINE_ENTRY_(name, type, params, start, len, passes, skips)                          \
	PC_EXPORT type name(PC_LIST(PC_P_DECL, PC_UNPAREN params))                               \
	{                                                                                        \
		uintptr_t s, e;                                                                  \
		if (PC_UNLIKELY(PC_GUARDED())) {                                                 \
			pc_note_guarded();                                                       \
			return pc_orig_##name(PC_LIST(PC_P_NAME, PC_UNPAREN params));            \
		}                                                                                \
		if (PC_LIKELY(passes))                                                           \
			return pc_orig_##name(PC_LIST(PC_P_NAME, PC_UNPAREN params));            \
		s = pc_page_start((uintptr_t)start), e = pc_page_end((uintptr_t)start, len);    \
		if (skips)                                                                       \
			return pc_orig_##name(PC_LIST(PC_P_NAME, PC_UNPAREN params));            \
		if (PC_LIKELY(!pc_table_hit(s, e)))                                              \
			return pc_orig_##name(PC_LIST(PC_P_NAME, PC_UNPAREN params));            \
		return name##_slow(PC_LIST(PC_P_NAME, PC_UNPAREN params), s, e);                 \
	}

#endif
