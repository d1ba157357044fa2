/* Start-up: configuration, fork handlers, and the wiring of modules that
 * must tell a higher one something (shim.h). Nothing here connects: a
 * process that never registers never talks to the coordinator. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "../include/pincoh.h"
#include "shim.h"

/* libc's entries patch.c makes jump to our hooks (the chained rows of
 * hooks/hooktable.h), and the pc_chain slot each hook calls when another
 * interposer was there first. */
int munmap(void *, size_t);
int madvise(void *, size_t, int);
void *mremap(void *, size_t, size_t, int, ...);
void *mmap(void *, size_t, int, int, int, off_t);
void *sbrk(intptr_t);
#define PATCHED(name, type, failed, why, real, chained, ...) \
	PC_IF_##chained({ #name, (void *)name, (void **)&pc_chain.name, NULL },)
#define PATCHED_ONLY(name, type, params) { #name, (void *)name, (void **)&pc_chain.name, NULL },
static struct pc_patch_entry patched[] = { PC_HOOKS(PATCHED) PC_HOOKS_PATCHED_ONLY(PATCHED_ONLY) };

/* A new coordinator: our exports of the old job table are revoked there,
 * in place, before their names are forgotten (under the table lock). */
static void revoke_old(const struct pc_hit *h, void *ctx)
{
	struct pc_revoked r;
	(void)ctx;
	if (h->jt && pc_jt_export_kill(h->jt, h->export, h->xgen, PINCOH_REASON_REVOKED))
		pc_jt_revoke(h->jt, h->export, h->xgen, &r);
}

/* From here events go to the new area, and a new coordinator first hears
 * of everything we hold: under the table lock, so no event slips between. */
static void adopt(struct pc_jt *jt, struct pc_area_hdr *area)
{
	pc_table_lock();
	pc_table_unpublish_all_locked(revoke_old, NULL); /* names died with the old coordinator */
	pc_jt_install(jt);
	pc_area_install(area);
	pc_table_announce_locked();
	pc_table_unlock();
}

static const struct pc_session_ops session_ops = { .adopt = adopt, .lost = pc_attach_kill_all, .held = pc_table_count };

/* Were we loaded before libc? The link map lists objects in load order:
 * the program, LD_PRELOAD's libraries (a sanitizer runtime, then us), its
 * dependencies, libc. A library dlopen'ed later (koffi in a Node program run
 * without the shim) comes after libc, and the program's calls never reach
 * its hooks. dlsym(RTLD_DEFAULT, "munmap") cannot tell: a sanitizer runtime
 * preloaded before us intercepts munmap too. */
static int loaded_before_libc(void)
{
	Dl_info info;
	struct link_map *me = NULL;
	if (!dladdr1((void *)pc_next, &info, (void **)&me, RTLD_DL_LINKMAP) || !me)
		return 1; /* cannot tell: behave as we always did */
	for (struct link_map *l = me->l_prev; l; l = l->l_prev) {
		const char *base = l->l_name ? strrchr(l->l_name, '/') : NULL;
		base = base ? base + 1 : l->l_name;
		if (base && strncmp(base, "libc.so", 7) == 0)
			return 0;
	}
	return 1;
}

__attribute__((constructor(102))) static void pc_init(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	if (ps > 0)
		pc_page_size = (uintptr_t)ps;
	pc_pid = (pid_t)syscall(SYS_getpid);
	pc_session_wire(&session_ops); /* before anything can connect: pc_interposed is still 0 */
	pc_interposed = loaded_before_libc();
	/* Not preloaded: nothing we do can be coherent (the program's munmap,
	 * mprotect and fork go past us), so we stay inert and silent: no libc
	 * patch, no malloc fallback, no messages, no handlers. The API answers
	 * -ENOTCONN (session.c), and the Node binding says why. */
	pc_config_load(pc_interposed);
	if (!pc_interposed)
		return;
	pc_fork_resolve();
	pc_free_resolve();
	pc_exit_init();
	/* Without PINCOH_SOCKET (read once, here) this process can never hold a
	 * registration: pincoh_register is -ENOTCONN for its whole life. Patching
	 * libc's text, or on an architecture without the patch making malloc
	 * never give memory back, would then cost the process and buy nothing,
	 * so libc is left alone (stats say PINCOH_LIBC_NONE). */
	if (pc_cfg.socket_path[0])
		pc_patch_init(patched, sizeof patched / sizeof patched[0]);
	pthread_atfork(pc_atfork_prepare, pc_atfork_parent, pc_atfork_child);
}
