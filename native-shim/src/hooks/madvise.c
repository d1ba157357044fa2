/* madvise: its row of hooktable.h. Only advice that drops or may move pages is
 * worth a look (pc_advice_drops): the rest (WILLNEED, SEQUENTIAL, HUGEPAGE,
 * DONTFORK...) leave a registration's pages where they are. The real call is
 * real even in the stub build. */
#include <sys/mman.h>
#include "../../include/pincoh.h"
#include "../patch.h"
#include "../policy.h"
#include "../runtime.h"
#include "../slowpath.h"
#include "../table.h"
#include "hooktable.h"

#if defined(__SANITIZE_THREAD__)
/* ThreadSanitizer build only: an exiting thread drops its own stack's pages
 * (glibc's advise_stack_range: MADV_DONTNEED up to about 16 KiB below its
 * stack pointer) after TSan has finished with the thread, when any pthread
 * call crashes inside TSan. Such a call goes straight through there; the
 * pages stay mapped, and an unmap of the stack later is seen from another
 * thread. The real shim sees it like any other. */
static int exiting_thread_stack(uintptr_t e, int advice)
{
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	return advice == MADV_DONTNEED && e <= sp && sp - e < (64u << 10);
}
#else
#define exiting_thread_stack(e, advice) 0
#endif

PC_HOOK_madvise(PC_DEFINE_CALLS)
PC_HOOK_madvise(PC_DEFINE_ENTRY)
