/* munmap: its row of hooktable.h, nothing more. */
#include <sys/mman.h>
#include "../../include/pincoh.h"
#include "../patch.h"
#include "../runtime.h"
#include "../slowpath.h"
#include "../table.h"
#include "real.h"
#include "hooktable.h"

PC_HOOK_munmap(PC_DEFINE_CALLS)
PC_HOOK_munmap(PC_DEFINE_ENTRY)
