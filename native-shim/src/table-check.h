/* table.c's invariants, checked: compiled into table.c only for its property
 * test (test/progs/tabletest.c, -DPC_TABLE_TEST), never into the shim. Under
 * the table's lock (or with no other thread about). */
#ifndef PC_TABLE_CHECK_H
#define PC_TABLE_CHECK_H

/* (s1, k1) before (s2, k2) */
static int before(uintptr_t s1, uint64_t k1, uintptr_t s2, uint64_t k2)
{
	return s1 < s2 || (s1 == s2 && k1 < k2);
}

struct check_bound { int has; uintptr_t s; uint64_t k; };

static const char *check_node(uint32_t x, unsigned l, struct check_bound lo, struct check_bound hi, int ledge, int redge,
			      size_t *entries, size_t *seen, uintptr_t *maxend)
{
	const struct meta *w;
	const struct node *d;
	uintptr_t m = 0;
	if (x >= nodes_used)
		return "a node index beyond the nodes handed out";
	if (++*seen > nodes_live)
		return "more nodes in the tree than live";
	w = &metas[x], d = &nodes[x];
	if ((int)w->leaf != (l + 1 == height))
		return "a leaf above the bottom level, or an internal node at it";
	if (w->n > F)
		return "more than F slots";
	if (l > 0 && w->n == 0)
		return "an empty node other than the root";
	if (l > 0 && w->n < MINF && !ledge && !redge)
		return "a node below half full away from the edges of the tree";
	if (l == 0 && !w->leaf && w->n < 2)
		return "an internal root with fewer than two children";
	for (unsigned i = w->n; i < F; i++)
		if (d->start[i] != UINTPTR_MAX)
			return "an unused slot whose start is not UINTPTR_MAX";
	for (unsigned i = 0; i < w->n; i++) {
		uintptr_t s = d->start[i];
		uint64_t k = w->key[i];
		/* an internal node's slot 0 bounds nothing: its parent's separator does */
		if ((w->leaf || i > 0) && lo.has && before(s, k, lo.s, lo.k))
			return "a slot before its subtree's lower bound";
		if ((w->leaf || i > 0) && hi.has && !before(s, k, hi.s, hi.k))
			return "a slot at or after its subtree's upper bound";
		if ((w->leaf ? i > 0 : i > 1) && !before(d->start[i - 1], w->key[i - 1], s, k))
			return "slots out of (start, key) order";
		if (w->leaf) {
			if (s >= w->end[i])
				return "an entry whose end is not above its start";
			if (k == 0 || k > next_key)
				return "an entry with a key never issued";
			if (w->flags[i] & ~USER_FLAGS)
				return "an entry with flags beyond READ|WRITE";
			if (w->end[i] > m)
				m = w->end[i];
			if (d->pm[i] != m)
				return "a leaf's pm is not the running max of its ends";
			++*entries;
		} else {
			struct check_bound clo = i == 0 ? lo : (struct check_bound){ 1, s, k };
			struct check_bound chi = i + 1 < w->n ? (struct check_bound){ 1, d->start[i + 1], w->key[i + 1] } : hi;
			uintptr_t cm = 0;
			const char *why;
			if (d->pm[i] != m)
				return "an internal node's pm is not the max end of the children before";
			why = check_node(child(x, i), l + 1, clo, chi, ledge && i == 0, redge && i + 1 == w->n, entries, seen, &cm);
			if (why)
				return why;
			if (w->end[i] != cm)
				return "an internal node's end is not its child's max end";
			if (cm > m)
				m = cm;
		}
	}
	if (w->maxend != m)
		return "a node's maxend is not the max end of its subtree";
	*maxend = m;
	return NULL;
}

static int pf_bit(uintptr_t page, int *tree)
{
	uint32_t d = pf_dir[page >> (PF_GIB_SHIFT - PF_PAGE_SHIFT)];
	*tree = d == PF_TREE;
	if (d == 0 || d == PF_TREE)
		return 0;
	return pf_bits[(size_t)(d - 1) * PF_WORDS + (page >> 6) % PF_WORDS] >> (page & 63) & 1;
}

/* Every page an entry touches has its bit set (or its GiB is the tree's);
 * and unless a removal ran out of PF_REDO, no other page has one. */
static const char *check_filter(void)
{
	uintptr_t lastq = 0, ip, iq;
	size_t marked = 0, set = 0;
	int any = 0, tree;
	struct path p;
	if (pf_blocks_used > PF_BLOCKS)
		return "more filter blocks than reserved";
	for (int ok = seek(0, 0, &p); ok; ok = next(&p)) {
		struct item it;
		at_path(&p, &it);
		if (!pf_pages(it.start, it.end, &ip, &iq))
			continue;
		for (uintptr_t g = ip; g <= iq; g++)
			if (!pf_bit(g, &tree) && !tree)
				return "a page an entry touches without its filter bit";
		/* entries come in start order: the pages not counted yet are past lastq */
		if (any && ip <= lastq)
			ip = lastq + 1;
		if (iq >= ip || !any)
			marked += iq >= ip ? iq - ip + 1 : 0;
		if (!any || iq > lastq)
			lastq = iq;
		any = 1;
	}
	for (uint32_t b = 0; b < pf_blocks_used; b++)
		for (size_t w = 0; w < PF_WORDS; w++)
			set += (size_t)__builtin_popcountll(pf_bits[(size_t)b * PF_WORDS + w]);
	if (pf_loose == 0 && set != marked)
		return "filter bits set on pages no entry touches";
	return NULL;
}

/* NULL, or the first broken invariant. */
static const char *pc_table_check(void)
{
	size_t entries = 0, seen = 0, used = 0, freed = 0;
	uintptr_t m = 0;
	const char *why;
	if (!nodes)
		return atomic_load(&count) ? "entries without storage" : NULL;
	if (height < 1 || height > MAXH)
		return "a height out of range";
	if (root_half > F / 2 || (root_half ? 2 * root_half < metas[root].n || root_half >= metas[root].n : metas[root].n > 1))
		return "root_half does not fit the root";
	why = check_node(root, 0, (struct check_bound){ 0, 0, 0 }, (struct check_bound){ 0, 0, 0 }, 1, 1, &entries, &seen, &m);
	if (why)
		return why;
	if (entries != atomic_load(&count))
		return "count is not the number of entries";
	if (seen != nodes_live)
		return "live nodes not in the tree (a leak)";
	for (uint32_t x = free_nodes; x != NIL; x = metas[x].next)
		if (++freed > nodes_used)
			return "a loop in the free list";
	if (freed + nodes_live != nodes_used)
		return "nodes neither live nor free";
	for (size_t i = 0; i < HASH_CAP; i++)
		used += slots[i].key != 0;
	if (used != entries)
		return "the hash does not hold one slot per entry";
	why = check_filter();
	if (why)
		return why;
	if (2 * used > HASH_CAP && hash_bits < HASH_MAX_BITS)
		return "the hash is over half full";
	{
		struct path p;
		for (int ok = seek(0, 0, &p); ok; ok = next(&p)) {
			struct item it;
			struct slot *s;
			at_path(&p, &it);
			s = hash_find(it.key);
			if (!s || s->start != it.start)
				return "an entry the hash does not find at its start";
		}
	}
	return NULL;
}

#endif
