/* tabletest: native-shim/src/table.c (compiled in, with its invariant check)
 * against a naive model, and its lock-free reader against a busy writer.
 *
 *   tabletest [SEED [COUNT]]   COUNT seeds from SEED (default 1 and 6): random
 *                              add, remove, set_export, valid, query, hit,
 *                              apply (munmap, mprotect, madvise, mmap, free,
 *                              mremap with and without follow, exit) and move,
 *                              every answer checked against an array of the
 *                              registrations; then, per seed, a bulk phase up
 *                              to 120,000 registrations removed oldest,
 *                              newest or random first. A failure prints its
 *                              seed and step: `tabletest SEED 1` replays it.
 *   tabletest race ITERS       reader threads ask pc_table_hit about a range
 *                              always registered (must say 1) and one never
 *                              registered (must say 0) while a writer adds,
 *                              removes, moves and unmaps thousands of others
 *
 * Prints one summary line ("tabletest ok: ..." / "race ok: ...") and exits 0,
 * or says what went wrong and exits 1. Built three ways (test/progs/Makefile):
 * the shim's node width, PC_TREE_F=4 (deep trees: splits and merges at every
 * turn), and under ThreadSanitizer for race. */
#define _GNU_SOURCE
#define PC_TABLE_TEST
#include "../../native-shim/src/table.c"
#include "../../native-shim/src/policy.c"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- the shim around table.c: events counted by type ---- */

static uint64_t events[16];
void pc_emit(uint16_t type, uint16_t reason, uint32_t call, uint32_t flags, uint64_t key, uint64_t addr, uint64_t len)
{
	(void)reason, (void)call, (void)flags, (void)key, (void)addr, (void)len;
	if (type < 16)
		__atomic_fetch_add(&events[type], 1, __ATOMIC_RELAXED);
}

/* ---- failures say where ---- */

static uint64_t cur_seed, cur_step;
static const char *cur_phase = "";

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "tabletest: FAILED seed %llu, %s step %llu (F=%d): ", (unsigned long long)cur_seed, cur_phase,
		(unsigned long long)cur_step, F);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n  replay: tabletest %llu 1\n", (unsigned long long)cur_seed);
	exit(1);
}

static void check_tree(void)
{
	const char *why = pc_table_check();
	if (why)
		fail("invariant: %s", why);
}

/* ---- randomness: xorshift64*, replayable ---- */

static uint64_t rs;
static uint64_t rnd(void)
{
	rs ^= rs >> 12, rs ^= rs << 25, rs ^= rs >> 27;
	return rs * 0x2545F4914F6CDD1Dull;
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }
static int chance(unsigned pct) { return below(100) < pct; }

/* ---- the model: every registration by key, and the live keys ---- */

struct ment { uintptr_t start, end; uint32_t flags, export, xgen; int alive; };
static struct ment *mod;          /* indexed by key */
static size_t mod_cap;
static uint64_t *live;            /* live keys, unordered */
static size_t nlive, *live_at;    /* live_at[key]: its index in live */
static uint64_t model_next;       /* the last key issued */

static void model_init(size_t cap)
{
	free(mod), free(live), free(live_at);
	mod_cap = cap;
	mod = calloc(cap, sizeof *mod);
	live = calloc(cap, sizeof *live);
	live_at = calloc(cap, sizeof *live_at);
	nlive = 0;
	if (!mod || !live || !live_at) {
		fprintf(stderr, "tabletest: out of memory\n");
		exit(1);
	}
}

static void model_add(uint64_t key, uintptr_t s, uintptr_t e, unsigned flags)
{
	if (key >= mod_cap)
		fail("more keys than the model has room for");
	mod[key] = (struct ment){ .start = s, .end = e, .flags = flags, .alive = 1 };
	live_at[key] = nlive;
	live[nlive++] = key;
}

static void model_del(uint64_t key)
{
	size_t i = live_at[key];
	mod[key].alive = 0;
	live[i] = live[--nlive];
	live_at[live[i]] = i;
}

static int model_hit(uintptr_t a, uintptr_t b)
{
	if (a >= b)
		return 0;
	for (size_t i = 0; i < nlive; i++)
		if (mod[live[i]].start < b && a < mod[live[i]].end)
			return 1;
	return 0;
}

/* ---- operations, each checked ---- */

static uintptr_t base = 0x10000000;
static uintptr_t span_pages = 4096;  /* starts fall on this many pages (fewer: more duplicates) */

static uintptr_t some_addr(void)
{
	uintptr_t a = base + below(span_pages + 8) * 4096 - 4 * 4096;
	if (chance(10))
		a += below(4096); /* byte-granular, as free() asks */
	return a;
}

static size_t some_len(void)
{
	if (chance(5))
		return 4096 * (1 + below(span_pages / 4 + 1)); /* long: overlaps many */
	if (chance(10))
		return 1 + below(8192);
	return 4096 * (1 + below(4));
}

static uint64_t some_key(void)
{
	if (nlive && chance(85))
		return live[below(nlive)];
	if (chance(50) && model_next)
		return 1 + below(model_next); /* removed ones too */
	return chance(50) ? 0 : model_next + 1 + below(3);
}

static void op_add(uintptr_t s, uintptr_t e, unsigned flags)
{
	uint64_t key = 0, reg = events[PC_R_REG];
	int rc = pc_table_add(s, e, flags, PC_MAX_REGS, &key);
	if (rc != 0)
		fail("add [%#lx, %#lx) returned %d", (unsigned long)s, (unsigned long)e, rc);
	if (key != model_next + 1)
		fail("add gave key %llu, expected %llu", (unsigned long long)key, (unsigned long long)(model_next + 1));
	if (events[PC_R_REG] != reg + 1)
		fail("add emitted no REG event");
	model_next = key;
	model_add(key, s, e, flags);
}

static void op_add_random(void)
{
	uintptr_t s = some_addr();
	if (chance(3) && nlive < PC_MAX_REGS - 1) {
		/* at the limit: refused, nothing issued */
		uint64_t key = 12345;
		int rc = pc_table_add(s, s + 4096, PINCOH_READ, nlive, &key);
		if (rc != -ENOSPC || key != 12345)
			fail("add over the limit returned %d", rc);
		return;
	}
	op_add(s, s + some_len(), 1 + (unsigned)below(3));
}

static void op_remove(void)
{
	uint64_t key = some_key();
	struct pc_hit gone;
	int alive = key && key <= model_next && mod[key].alive;
	uint64_t dereg = events[PC_R_DEREG];
	int rc = pc_table_remove(key, &gone);
	if (rc != (alive ? 0 : -ENOENT))
		fail("remove %llu returned %d (alive %d)", (unsigned long long)key, rc, alive);
	if (!alive)
		return;
	if (gone.key != key || gone.start != mod[key].start || gone.end != mod[key].end ||
	    gone.reason != PINCOH_REASON_DEREGISTER || gone.export != mod[key].export || gone.xgen != mod[key].xgen)
		fail("remove %llu told of something else", (unsigned long long)key);
	if (events[PC_R_DEREG] != dereg + 1)
		fail("remove emitted no DEREG event");
	model_del(key);
}

static void op_export(void)
{
	uint64_t key = some_key();
	int alive = key && key <= model_next && mod[key].alive;
	uint32_t x = chance(30) ? 0 : (uint32_t)below(100), g = (uint32_t)rnd();
	int rc = pc_table_set_export(key, x, g, NULL);
	if (rc != (alive ? 0 : -ENOENT))
		fail("set_export %llu returned %d (alive %d)", (unsigned long long)key, rc, alive);
	if (alive)
		mod[key].export = x, mod[key].xgen = g;
}

static void op_lookup(void)
{
	uint64_t key = some_key();
	int alive = key && key <= model_next && mod[key].alive, bad = key == 0 || key > model_next;
	uintptr_t s = 1, e = 2;
	int v = pc_table_valid(key), q = pc_table_query(key, &s, &e);
	if (v != (bad ? -EINVAL : alive))
		fail("valid %llu returned %d", (unsigned long long)key, v);
	if (q != (alive ? 0 : bad ? -EINVAL : -ENOENT))
		fail("query %llu returned %d", (unsigned long long)key, q);
	if (alive && (s != mod[key].start || e != mod[key].end))
		fail("query %llu: [%#lx, %#lx), the model has [%#lx, %#lx)", (unsigned long long)key, (unsigned long)s,
		     (unsigned long)e, (unsigned long)mod[key].start, (unsigned long)mod[key].end);
}

static void check_hit(uintptr_t a, uintptr_t b)
{
	int got = pc_table_hit(a, b), want = model_hit(a, b);
	if (got != want)
		fail("hit [%#lx, %#lx) said %d, the model %d", (unsigned long)a, (unsigned long)b, got, want);
}

static void op_hit(void)
{
	uintptr_t a = some_addr(), b;
	switch (below(10)) {
	case 0: b = a; break;                           /* empty: never */
	case 1: b = a - below(3); break;                /* reversed: never */
	case 2: b = UINTPTR_MAX; break;
	case 3: a = 0, b = a + some_len() + base; break;
	case 4:                                         /* the edges of a live one */
		if (nlive) {
			struct ment *m = &mod[live[below(nlive)]];
			a = chance(50) ? m->end : m->end - 1;
			b = chance(50) ? a + 1 : m->start;
			if (b <= a)
				b = a + 1 + below(4096);
		} else {
			b = a + 1;
		}
		break;
	default: b = a + 1 + below(4 * 4096);
	}
	check_hit(a, b);
}

static int cmp_hit(const void *x, const void *y)
{
	const struct pc_hit *a = x, *b = y;
	return a->key < b->key ? -1 : a->key > b->key;
}

/* What the model expects apply to record: one pass as table.c's scan does it. */
static void model_scan(const struct pc_event *ev, uintptr_t a, uintptr_t b, int follow, struct pc_hit *inval, size_t *ni,
		       struct pc_hit *fol, size_t *nf, int *published)
{
	for (size_t i = 0; i < nlive;) {
		uint64_t key = live[i];
		struct ment *m = &mod[key];
		int act;
		if (!(m->start < b && a < m->end)) {
			i++;
			continue;
		}
		act = pc_policy(ev, m->start, m->end, m->flags, follow);
		if (act == PC_ACT_KEEP) {
			i++;
			continue;
		}
		*published |= m->export != 0;
		struct pc_hit hit = { .key = key, .start = m->start, .end = m->end, .reason = ev->reason, .export = m->export, .xgen = m->xgen };
		if (act == PC_ACT_INVALIDATE) {
			inval[(*ni)++] = hit;
			model_del(key); /* live[i] is another key now */
		} else {
			fol[(*nf)++] = hit;
			i++;
		}
	}
}

static void compare_hits(const char *what, struct pc_hit *got, size_t ngot, struct pc_hit *want, size_t nwant)
{
	if (ngot != nwant)
		fail("apply recorded %zu %s, the model %zu", ngot, what, nwant);
	qsort(got, ngot, sizeof *got, cmp_hit);
	qsort(want, nwant, sizeof *want, cmp_hit);
	for (size_t i = 0; i < ngot; i++)
		if (got[i].key != want[i].key || got[i].start != want[i].start || got[i].end != want[i].end ||
		    got[i].reason != want[i].reason || got[i].export != want[i].export || got[i].xgen != want[i].xgen)
			fail("apply's %s #%zu: key %llu [%#lx, %#lx) reason %d export %u/%u; the model: key %llu [%#lx, %#lx) reason %d export %u/%u",
			     what, i, (unsigned long long)got[i].key, (unsigned long)got[i].start, (unsigned long)got[i].end,
			     got[i].reason, got[i].export, got[i].xgen, (unsigned long long)want[i].key,
			     (unsigned long)want[i].start, (unsigned long)want[i].end, want[i].reason, want[i].export, want[i].xgen);
}

/* One hooked call, as slowpath.c makes it: apply, then (mremap) move. */
static void do_apply(struct pc_event *ev, int follow, uintptr_t new_start)
{
	size_t room = nlive + 1, ni = 0, nf = 0;
	struct pc_hit *inval = malloc(room * sizeof *inval), *fol = malloc(room * sizeof *fol);
	struct pc_hits h;
	int published = 0;
	uint64_t inv0 = events[PC_R_INVAL], mov0 = events[PC_R_MOVING], moved0 = events[PC_R_MOVED];
	if (!inval || !fol)
		fail("out of memory");
	model_scan(ev, ev->start, ev->end, follow, inval, &ni, fol, &nf, &published);
	if (ev->dest_end)
		model_scan(ev, ev->dest, ev->dest_end, follow, inval, &ni, fol, &nf, &published);
	pc_table_apply(ev, follow, 7, &h);
	if (h.call != 7 || !h.published != !published)
		fail("apply: call %u published %d, the model %d", h.call, h.published, published);
	if (events[PC_R_INVAL] - inv0 != (ev->reason == PINCOH_REASON_EXIT ? 1 : ni))
		fail("apply emitted %llu INVAL events for %zu invalidated", (unsigned long long)(events[PC_R_INVAL] - inv0), ni);
	if (events[PC_R_MOVING] - mov0 != nf)
		fail("apply emitted %llu MOVING events for %zu followed", (unsigned long long)(events[PC_R_MOVING] - mov0), nf);
	compare_hits("invalidated", h.inval, h.n_inval, inval, ni);
	compare_hits("followed", h.follow, h.n_follow, fol, nf);
	if (h.n_follow) {
		pc_table_move(&h, ev->start, new_start);
		if (events[PC_R_MOVED] - moved0 != h.n_follow)
			fail("move emitted %llu MOVED events for %zu", (unsigned long long)(events[PC_R_MOVED] - moved0), h.n_follow);
		for (size_t i = 0; i < nf; i++) {
			struct ment *m = &mod[fol[i].key];
			m->start = fol[i].start - ev->start + new_start;
			m->end = fol[i].end - ev->start + new_start;
		}
	}
	pc_hits_release(&h);
	free(inval), free(fol);
}

static void op_apply(void)
{
	static const int prots[] = { 0, PROT_READ, PROT_WRITE, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE | PROT_EXEC };
	static const int advice[] = { 0, 3, 4, 8, 9, 10, 12, 14, 21, 24 };
	struct pc_event ev = { 0 };
	uintptr_t a = some_addr() & ~(uintptr_t)4095, new_start = 0;
	size_t len = some_len();
	int follow = 0;
	if (chance(10))
		len = 4096 * (1 + below(span_pages / 2 + 8)); /* wide: many at once (past apply's stack room) */
	ev.start = a, ev.end = a + len, ev.len = len;
	switch (below(7)) {
	case 0: ev.reason = PINCOH_REASON_MUNMAP; break;
	case 1: ev.reason = PINCOH_REASON_MPROTECT, ev.arg = prots[below(5)]; break;
	case 2: ev.reason = PINCOH_REASON_MADVISE, ev.arg = advice[below(10)]; break;
	case 3: ev.reason = PINCOH_REASON_MMAP; break;
	case 4: ev.reason = PINCOH_REASON_FREE, ev.start = a + below(4096), ev.end = ev.start + 1 + below(len); break;
	default: /* mremap: shrink or grow, moved (MAYMOVE or FIXED) or in place */
		ev.reason = PINCOH_REASON_MREMAP;
		follow = chance(60);
		ev.new_len = 4096 * (1 + below(len / 4096 + 4));
		ev.arg = 1;
		if (chance(40)) {
			ev.dest = some_addr() & ~(uintptr_t)4095, ev.dest_end = ev.dest + ev.new_len;
			new_start = ev.dest;
		} else {
			new_start = chance(30) ? ev.start : (some_addr() & ~(uintptr_t)4095);
		}
	}
	do_apply(&ev, follow, new_start);
}

struct each { size_t n; uintptr_t ps; uint64_t pk; int ok; };
static void each_fn(uint64_t key, uintptr_t s, uintptr_t e, unsigned flags, void *p)
{
	struct each *x = p;
	if (key == 0 || key > model_next || !mod[key].alive || mod[key].start != s || mod[key].end != e ||
	    mod[key].flags != flags || (x->n && !before(x->ps, x->pk, s, key)))
		x->ok = 0;
	x->n++, x->ps = s, x->pk = key;
}

static void check_all(void)
{
	struct each c = { 0, 0, 0, 1 };
	check_tree();
	if (pc_table_count() != nlive)
		fail("count %zu, the model %zu", pc_table_count(), nlive);
	pc_table_foreach(each_fn, &c);
	if (!c.ok || c.n != nlive)
		fail("foreach: %zu registrations, in order and as the model has them: %d (the model: %zu)", c.n, c.ok, nlive);
}

static void unpublish_fn(const struct pc_hit *h, void *p)
{
	size_t *n = p;
	if (h->key == 0 || h->key > model_next || !mod[h->key].alive || !mod[h->key].export ||
	    h->export != mod[h->key].export || h->xgen != mod[h->key].xgen || h->start != mod[h->key].start ||
	    h->end != mod[h->key].end)
		fail("unpublish_all told of key %llu, not as the model has it", (unsigned long long)h->key);
	++*n;
}

static void op_announce_unpublish(void)
{
	uint64_t reg = events[PC_R_REG];
	size_t want = 0, got = 0;
	pc_table_lock();
	pc_table_announce_locked();
	if (events[PC_R_REG] - reg != nlive)
		fail("announce emitted %llu REG events for %zu", (unsigned long long)(events[PC_R_REG] - reg), nlive);
	pc_table_unpublish_all_locked(unpublish_fn, &got);
	pc_table_unlock();
	for (size_t i = 0; i < nlive; i++)
		if (mod[live[i]].export) /* the unpublished ones only */
			want++, mod[live[i]].export = 0, mod[live[i]].xgen = 0;
	if (got != want)
		fail("unpublish_all told of %zu exports, the model has %zu", got, want);
}

/* Random operations, the mix changing phase by phase. */
static size_t random_phase(uint64_t steps, unsigned add_pct, size_t max_live)
{
	size_t peak = 0;
	for (cur_step = 0; cur_step < steps; cur_step++) {
		uint64_t r = below(100);
		if (r < add_pct && nlive < max_live)
			op_add_random();
		else if (r < add_pct + 15)
			op_remove();
		else if (r < add_pct + 25)
			op_export();
		else if (r < add_pct + 35)
			op_lookup();
		else if (r < add_pct + 45)
			op_apply();
		else
			op_hit();
		if (pc_table_count() != nlive)
			fail("count %zu, the model %zu", pc_table_count(), nlive);
		if (nlive > peak)
			peak = nlive;
		if (cur_step % 97 == 0)
			check_tree();
		if (cur_step % 1009 == 0) {
			check_all();
			if (chance(20))
				op_announce_unpublish();
		}
	}
	check_all();
	return peak;
}

/* Many registrations, added in one address order, removed in another. */
static void bulk_phase(size_t n, int addr_order, int rm_order)
{
	uint64_t first = 1, top; /* the oldest and newest: live ones from before this phase too */
	uintptr_t b0 = 0x200000000000ull + (uintptr_t)below(1 << 20) * 4096;
	cur_phase = "bulk";
	for (cur_step = 0; cur_step < n; cur_step++) {
		uintptr_t page = addr_order == 0 ? cur_step : addr_order == 1 ? n - 1 - cur_step : below(n);
		uintptr_t s = b0 + page * 2 * 4096;
		/* neighbours, duplicates and a few long ones over many */
		size_t len = chance(2) ? 4096 * (2 + below(64)) : 4096;
		if (chance(5))
			s -= 4096;
		op_add(s, s + len, PINCOH_READ | PINCOH_WRITE);
		if (cur_step % 4099 == 0)
			check_tree();
	}
	check_all();
	top = model_next;
	for (int i = 0; i < 300; i++) {
		uintptr_t a = b0 + below(2 * n + 4) * 4096 - 4096 + (chance(20) ? below(4096) : 0);
		check_hit(a, a + 1 + below(chance(10) ? 64 * 4096 : 4096));
	}
	for (cur_step = 0; nlive; cur_step++) {
		uint64_t key;
		struct pc_hit gone;
		if (rm_order == 0) {
			for (key = first; !mod[key].alive; key++)
				;
			first = key + 1;
		} else if (rm_order == 1) {
			for (key = top; !mod[key].alive; key--)
				;
			top = key - 1;
		} else {
			key = live[below(nlive)];
		}
		if (pc_table_remove(key, &gone) != 0 || gone.key != key)
			fail("bulk remove %llu", (unsigned long long)key);
		model_del(key);
		if (cur_step % 4099 == 0) {
			check_tree();
			for (int i = 0; i < 20; i++) {
				uintptr_t a = b0 + below(2 * n + 4) * 4096 - 4096;
				check_hit(a, a + 1 + below(4096));
			}
		}
	}
	check_all();
}

static size_t one_seed(uint64_t seed, size_t bulk)
{
	size_t peak;
	cur_seed = seed;
	rs = seed * 0x9E3779B97F4A7C15ull + 1;
	span_pages = 64 << below(8); /* 64 .. 8192 pages of starts: from crowded to sparse */
	base = 0x10000000 + (uintptr_t)below(1 << 16) * 4096;
	/* a third of the seeds straddle a GiB (two of the page filter's blocks),
	 * a third the filter's reach (2^48: beyond it the tree answers alone) */
	if (seed % 3 == 1)
		base = 0x40000000 - span_pages / 2 * 4096;
	else if (seed % 3 == 2)
		base = ((uintptr_t)1 << 48) - span_pages / 2 * 4096;
	cur_phase = "grow";
	peak = random_phase(6000, 55, 4000);
	cur_phase = "churn";
	random_phase(6000, 30, 4000);
	cur_phase = "drain";
	random_phase(3000, 5, 4000);
	if (bulk) {
		size_t n = bulk / 2 + below(bulk / 2);
		bulk_phase(n, (int)below(3), (int)(seed % 3));
		if (n > peak)
			peak = n;
	}
	cur_phase = "exit";
	{
		struct pc_event ev = { .reason = PINCOH_REASON_EXIT, .start = 0, .end = UINTPTR_MAX };
		for (int i = 0; i < 100; i++)
			op_add_random();
		do_apply(&ev, 0, 0);
		if (pc_table_count() != 0 || nlive != 0)
			fail("exit left %zu", pc_table_count());
		check_all();
	}
	return peak;
}

/* ---- readers against a writer ---- */

#define RACE_READERS 3
static uintptr_t race_a, race_z;          /* [race_a, +64 KiB) registered throughout; [race_z, +4 KiB) never */
static int race_stop;
static uint64_t race_reads[RACE_READERS], race_wrong[RACE_READERS];

static void *reader(void *p)
{
	size_t me = (size_t)p;
	uint64_t x = me + 1, reads = 0, wrong = 0;
	while (!__atomic_load_n(&race_stop, __ATOMIC_RELAXED)) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uintptr_t o = (uintptr_t)(x % 65536);
		wrong += pc_table_hit(race_a + o, race_a + o + 1) != 1;
		wrong += pc_table_hit(race_a, race_a + 65536) != 1;
		wrong += pc_table_hit(race_z, race_z + 4096) != 0;
		wrong += pc_table_hit(race_z + (o & 4095), race_z + (o & 4095) + 1) != 0;
		reads += 4;
	}
	race_reads[me] = reads, race_wrong[me] = wrong;
	return NULL;
}

/* A range for the writer: somewhere in 16 MiB around both, touching neither. */
static uintptr_t race_range(size_t len)
{
	for (;;) {
		uintptr_t s = race_z - 8 * 1024 * 1024 + below(16 * 1024 * 1024 / 4096) * 4096;
		if (chance(10))
			s = race_z + 4096 + below(4) * 4096; /* right after the gap */
		else if (chance(10))
			s = race_z - len - below(4) * 4096;  /* right before it */
		if (!(s < race_z + 4096 && race_z < s + len) && !(s < race_a + 65536 && race_a < s + len))
			return s;
	}
}

static int race(uint64_t iters)
{
	pthread_t t[RACE_READERS];
	uint64_t ka, writes = 0, wrong = 0, reads = 0;
	cur_phase = "race", cur_seed = 0;
	rs = 42;
	model_init(iters + 16);
	race_z = 0x7f0000000000ull;
	race_a = race_z + 2 * 1024 * 1024;
	if (pc_table_add(race_a, race_a + 65536, PINCOH_READ, PC_MAX_REGS, &ka) != 0)
		fail("race: add");
	model_next = ka;
	model_add(ka, race_a, race_a + 65536, PINCOH_READ);
	for (size_t i = 0; i < RACE_READERS; i++)
		pthread_create(&t[i], NULL, reader, (void *)i);
	for (cur_step = 0; cur_step < iters; cur_step++, writes++) {
		uint64_t r = below(100);
		if (r < 45 && nlive < 6000) {
			size_t len = 4096 * (1 + below(chance(5) ? 256 : 4));
			uintptr_t s = chance(5) ? race_a + below(16) * 4096 : race_range(len); /* a few over the registered one */
			uint64_t key;
			if (pc_table_add(s, s + len, PINCOH_READ | PINCOH_WRITE, PC_MAX_REGS, &key) != 0)
				fail("race: add");
			model_next = key;
			model_add(key, s, s + len, PINCOH_READ | PINCOH_WRITE);
		} else if (r < 85 && nlive > 1) {
			struct pc_hit gone;
			uint64_t key = live[below(nlive)];
			if (key == ka)
				continue;
			if (pc_table_remove(key, &gone) != 0)
				fail("race: remove");
			model_del(key);
		} else {
			/* a hooked call over a range near the gap, moved or not */
			size_t len = 4096 * (1 + below(64));
			uintptr_t s = race_range(len), to = race_range(len);
			struct pc_event ev = { .reason = chance(50) ? PINCOH_REASON_MUNMAP : PINCOH_REASON_MREMAP,
					       .start = s, .end = s + len, .len = len, .new_len = len, .arg = 1 };
			do_apply(&ev, 1, to);
		}
	}
	__atomic_store_n(&race_stop, 1, __ATOMIC_RELAXED);
	for (size_t i = 0; i < RACE_READERS; i++) {
		pthread_join(t[i], NULL);
		reads += race_reads[i], wrong += race_wrong[i];
	}
	check_all();
	if (wrong)
		fail("race: %llu of %llu reads were wrong", (unsigned long long)wrong, (unsigned long long)reads);
	printf("race ok: %llu reads by %d threads, %llu writes, 0 wrong (F=%d)\n", (unsigned long long)reads, RACE_READERS,
	       (unsigned long long)writes, F);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t first = 1, seeds = 6;
	size_t peak = 0, bulk = F >= 16 ? 200000 : 60000;
	if (argc >= 3 && !strcmp(argv[1], "race"))
		return race(strtoull(argv[2], NULL, 0));
	if (argc >= 2)
		first = strtoull(argv[1], NULL, 0), seeds = 1;
	if (argc >= 3)
		seeds = strtoull(argv[2], NULL, 0);
	model_init(bulk + 40000);
	for (uint64_t s = first; s < first + seeds; s++) {
		size_t p;
		/* a fresh table each seed: as a forked child has it */
		pc_table_reset_child();
		model_next = next_key;
		if (pc_table_hit(0, UINTPTR_MAX) != 0 || pc_table_count() != 0)
			fail("a reset table is not empty");
		p = one_seed(s, bulk);
		if (p > peak)
			peak = p;
		model_init(bulk + 40000 + model_next);
	}
	printf("tabletest ok: seeds %llu..%llu, up to %zu registrations, F=%d, %llu events\n", (unsigned long long)first,
	       (unsigned long long)(first + seeds - 1), peak, F,
	       (unsigned long long)(events[PC_R_REG] + events[PC_R_DEREG] + events[PC_R_INVAL] + events[PC_R_MOVING] + events[PC_R_MOVED]));
	return 0;
}
