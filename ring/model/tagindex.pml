/*
 * ring/model/tagindex.pml - the coordinator's tag index
 * (coordinator/tagindex.c) as SPIN checks it: lock-free lookups
 * (sb__tagindex_find) against the writer's adds, deletes and rebuilds.
 *
 * One writer (the bridge lock serialises sb__tagindex_add_held and
 * sb__tagindex_del_held) runs OPS random operations: add a tag that is
 * not indexed into a slot that is free, or delete a slot's tag. READERS
 * lock-free readers each run FINDS lookups of a random tag.
 *
 * A table is BUCKETS bytes: EMPTY, TOMB, or an entry HASH(tag) * 4 +
 * slot + 1 (C: hash32 << 32 | slot + 1). The tags' hashes are chosen to
 * collide: tags 1 and 3 have the same 32-bit hash (only the key tells
 * them apart), tag 2 the same home bucket but another hash, tag 4 the
 * bucket before; the homes sit at the table's end, so chains wrap. A
 * slot's key is (kseq, ktag): ktag 0 is the empty key (len 0). In C a key
 * is several words; here the tag id is one store, and the seqlock
 * (K1 odd, K2 the key, K3 even; the reader's two sequence loads around
 * its read) is kept as it is. The table pool stands for malloc: a table
 * is FREE, CUR(rent), RETIRED (handed to call_rcu) or SPARE; a rebuild
 * takes the spare, else a FREE table, else (no memory) is put off.
 *
 * RCU (liburcu-bp): a reader's read section is inrcu[r]; call_rcu
 * records which readers are active (waits[t]); the callback
 * (table_retired) may run once all of them have left. It runs at the
 * writer's exchange of the spare, any number of times, in any order:
 * the callback changes only the spare and the pool, which only that
 * exchange reads, and a callback ready earlier stays ready, so running
 * it there covers every other moment.
 *
 * Each step is one load or store of memory the other side sees, under
 * sequential consistency; the C lines each stands for are named in
 * docs/ARCHITECTURE.md ("The model"). What a process does with only its
 * own memory (a reader's decisions, the writer's used, live, bucket_of,
 * and its loads of the buckets only it stores) rides in an atomic block
 * with the nearest such step: nobody else can tell the difference, and
 * SPIN stores far fewer states.
 *
 * Presence (ghost): a tag is present while some slot's key holds it; it
 * changes at K2 of the key write (add: the tag; delete: len 0). For each
 * lookup the ghosts record whether the tag was present at some moment
 * of the call (g_pres) and absent at some moment (g_abs).
 *
 * Properties (assertions):
 *   T1 a lookup reports a tag found only if it was present at some
 *      moment of the call.
 *   T2 a lookup reports a tag absent only if it was absent at some
 *      moment of the call (a tag present throughout is found).
 *   T3 a lookup returns -EAGAIN only after it found a key mid-update.
 *   T4 a rebuild never writes into a table a reader may still probe:
 *      no active reader holds the table the writer takes.
 *   T5 (writer) after each operation, used counts the current table's
 *      non-empty buckets, and every entry is reachable from its home
 *      bucket without crossing an EMPTY one (on_chain).
 *   T6 what lookups see is one history: once a lookup has found a tag,
 *      a lookup that starts later finds it too, unless a delete of the
 *      tag has begun in between (g_obs0, g_del). T2 implies it, with
 *      presence defined at the key; T6 states it in what readers see.
 * SPIN also fails on an invalid end state (a process stuck).
 *
 * Mutants (each must make SPIN find a violation; `make model` checks):
 *   MUTANT_NO_TOMB        a delete always empties its bucket (T5; T2
 *                         with SKIP_T5)
 *   MUTANT_CASCADE_FAR    the backward walk of a delete passes over a
 *                         live entry and empties the tombstone before it
 *                         (T5; T2 with SKIP_T5)
 *   MUTANT_PUBLISH_EARLY  a rebuild publishes its table before filling it (T2)
 *   MUTANT_REUSE_EARLY    table_retired runs without waiting for the
 *                         readers (T4; T2 with SKIP_T4)
 *   MUTANT_KEY_FIRST      an add writes the key before its bucket (T2;
 *                         T6 with SKIP_T2: a lookup holding the slot's
 *                         old bucket finds the tag, the next one misses it)
 *   MUTANT_NO_KEY         a lookup takes a hash match for the tag, without
 *                         its key (T1)
 *
 * PREFILL starts the writer one add short of a rebuild (see init), so
 * that configurations with two readers reach rebuilds in few operations.
 */

#ifndef BUCKETS
#define BUCKETS 4 /* a power of two; C has >= 4 * SLOTS, for probe lengths only */
#endif
#ifndef SLOTS
#define SLOTS 2 /* at most 3: the entry encoding */
#endif
#ifndef TAGS
#define TAGS 3 /* 1..TAGS, at most 4, more than SLOTS (an add always has a tag) */
#endif
#ifndef OPS
#define OPS 5
#endif
#ifndef READERS
#define READERS 1
#endif
#ifndef FINDS
#define FINDS 1 /* lookups per reader */
#endif
/* WANT: the tag every lookup is for; undefined: any tag */
#ifndef NT
#define NT 3 /* tables malloc can give */
#endif
#ifndef KSPINS
#define KSPINS 2 /* KEY_SPINS, 256 in C */
#endif

#define MASK (BUCKETS - 1)
#define NONE 255
#define EMPTY 0
#define TOMB 254

/* the 32-bit hash of each tag, and its home bucket */
#define HASH(t) ((t) == 1 -> 7 : ((t) == 2 -> 15 : ((t) == 3 -> 7 : 6)))
#define HOME(h) ((h) & MASK)
#define ENTRY(h, s) ((h) * 4 + (s) + 1)
#define EHASH(e) ((e) / 4)
#define ESLOT(e) ((e) % 4 - 1)
#define B(t, i) tb[(t) * BUCKETS + (i)]

/* table states (the pool) */
#define FREE 0
#define CUR 1
#define RETIRED 2
#define SPARE 3

/* lookup results */
#define ABSENT 0
#define FOUND 1
#define AGAIN 2

/* ---- shared ---- */
byte tb[NT * BUCKETS];	/* the buckets of every table */
byte cur;		/* idx->table */
byte kseq[SLOTS];	/* idx->keys[s].seq */
byte ktag[SLOTS];	/* idx->keys[s].word/len: 0 when empty */
bit inrcu[READERS];	/* in a read section (liburcu-bp's reader state) */
byte waits[NT];		/* readers call_rcu must wait for, a bit each */

/* ---- the writer's (under the bridge lock) ---- */
byte tstate[NT];
byte spare;		/* idx->spare */
byte used, live;
byte bucket_of[SLOTS];
byte wtag[SLOTS];	/* the bridge's own record of what each slot holds */

/* ---- ghosts ---- */
byte g_slot[TAGS + 1];	/* the slot whose key holds tag t, or NONE */
bool g_pres[READERS], g_abs[READERS];
bool g_obs[TAGS + 1];	/* a lookup found tag t, and no delete of t has begun since */
bool g_obs0[READERS];	/* g_obs of the tag when the lookup began */
bool g_del[READERS];	/* a delete of the tag began during the lookup */
byte g_want[READERS];
byte rt[READERS];	/* the table reader r loaded, NONE outside a lookup */

/* K2: the key of slot s changes to tag k (0: empty); presence follows */
inline key_store(s, k)
{
	d_step {
		if
		:: ktag[s] != 0 -> g_slot[ktag[s]] = NONE
		:: else
		fi;
		ktag[s] = k;
		if
		:: k != 0 -> g_slot[k] = s
		:: else
		fi;
		r = 0;
		do
		:: r < READERS ->
			if
			:: inrcu[r] && g_slot[g_want[r]] != NONE -> g_pres[r] = true
			:: inrcu[r] && g_slot[g_want[r]] == NONE -> g_abs[r] = true
			:: else
			fi;
			r++
		:: else -> break
		od;
		r = 0
	}
}

/* key_write: K1, K2, K3 */
inline key_write(s, k)
{
	kseq[s] = kseq[s] + 1;	/* K1 */
	key_store(s, k);	/* K2 */
	kseq[s] = kseq[s] + 1	/* K3 */
}

/* free_bucket: the first EMPTY or TOMB bucket of h's chain in table t */
inline free_bucket(t, h)
{
	fb = HOME(h);
	do
	:: B(t, fb) != EMPTY && B(t, fb) != TOMB -> fb = (fb + 1) & MASK
	:: else -> break
	od
}

/* table_retired, for one ready table t: it becomes the spare, the old spare is freed */
inline retired(t)
{
	if
	:: spare != NONE -> tstate[spare] = FREE
	:: else
	fi;
	spare = t;
	tstate[t] = SPARE
}

#ifndef MUTANT_REUSE_EARLY
#define READY(t) (tstate[t] == RETIRED && waits[t] == 0)
#else
#define READY(t) (tstate[t] == RETIRED)
#endif

/* T4: no reader in a read section holds table t */
inline assert_unheld(t)
{
	r = 0;
	do
	:: r < READERS -> assert(!(inrcu[r] && rt[r] == t)); r++
	:: else -> break
	od;
	r = 0
}

/* rebuild's loop over the slots: each live entry into the first free bucket of its chain */
inline fill(t)
{
	j = 0;
	do
	:: atomic {
		j < SLOTS && bucket_of[j] != NONE ->
			e = B(old, bucket_of[j]);
			free_bucket(t, EHASH(e));
			B(t, fb) = e; /* sb_store_relaxed(&t->bucket[i], e) */
			bucket_of[j] = fb;
			j++;
			e = 0;
			fb = 0
	   }
	:: atomic { j < SLOTS && bucket_of[j] == NONE -> j++ }
	:: atomic { j == SLOTS -> j = 0; break }
	od
}

inline rebuild()
{
	old = cur;
	/* table_retired callbacks whose grace period is over, at any time before the exchange */
	do
	:: atomic { READY(0) -> retired(0) }
	:: atomic { READY(1) -> retired(1) }
#if NT > 2
	:: atomic { READY(2) -> retired(2) }
#endif
#if NT > 3
	:: atomic { READY(3) -> retired(3) }
#endif
	:: break
	od;
	atomic {
		nt = spare; /* __atomic_exchange_n(&idx->spare, NULL) */
		spare = NONE;
		if
		:: nt == NONE ->
			/* table_new: any free memory, or none */
			if
			:: tstate[0] == FREE -> nt = 0
			:: tstate[1] == FREE -> nt = 1
#if NT > 2
			:: tstate[2] == FREE -> nt = 2
#endif
#if NT > 3
			:: tstate[3] == FREE -> nt = 3
#endif
			:: true /* malloc fails: the rebuild is put off */
			fi
		:: else
		fi;
		if
		:: nt != NONE ->
#ifndef SKIP_T4
			assert_unheld(nt);
#endif
			tstate[nt] = CUR;
			i = 0
		:: else
		fi
	};
	if
	:: nt != NONE ->
		do
		:: atomic { i < BUCKETS -> B(nt, i) = EMPTY; i++ } /* clear the table */
		:: atomic { i == BUCKETS -> i = 0; break }
		od;
#ifndef MUTANT_PUBLISH_EARLY
		fill(nt);
		atomic { used = live; cur = nt }; /* sb_store_release(&idx->table, t) */
#else
		atomic { used = live; cur = nt };
		fill(nt);
#endif
		/* call_rcu(&old->rcu, table_retired): the grace period waits for every active reader */
		atomic {
			tstate[old] = RETIRED;
			waits[old] = 0;
			r = 0;
			do
			:: r < READERS ->
				if
				:: inrcu[r] -> waits[old] = waits[old] | (1 << r)
				:: else
				fi;
				r++
			:: else -> break
			od;
			r = 0;
			nt = NONE;
			old = 0
		}
	:: else -> old = 0
	fi
}

/* T5: used counts the non-empty buckets; every entry is on its chain */
inline check_writer()
{
	i = 0;
	n = 0;
	do
	:: i < BUCKETS ->
		if
		:: B(cur, i) != EMPTY -> n++
		:: else
		fi;
		i++
	:: else -> break
	od;
	assert(used == n);
	s = 0;
	do
	:: s < SLOTS ->
		if
		:: bucket_of[s] != NONE ->
			i = HOME(HASH(wtag[s]));
			do
			:: i == bucket_of[s] -> break
			:: else -> on_chain = (B(cur, i) != EMPTY); assert(on_chain); i = (i + 1) & MASK
			od
		:: else
		fi;
		s++
	:: else -> break
	od;
	i = 0;
	n = 0;
	s = 0;
	on_chain = false
}

/*
 * The writer. Its steps are its stores a reader can see (buckets, the
 * table pointer, keys) and its loads of what readers change (inrcu,
 * waits); its own bookkeeping rides along with the nearest such step.
 */
proctype Writer()
{
	byte op, s, k, i, j, n, e, fb, nt, old, r;
	bool on_chain;

	nt = NONE;
	do
	:: atomic { op == OPS -> break }
	:: atomic {
		op < OPS ->
		op++;
		/* the bridge's choice: add a tag to a free slot, or delete a slot's tag */
		if
		:: wtag[0] == 0 -> s = 0
		:: wtag[1] == 0 -> s = 1
#if SLOTS > 2
		:: wtag[2] == 0 -> s = 2
#endif
		:: wtag[0] != 0 -> s = 0 + SLOTS
		:: wtag[1] != 0 -> s = 1 + SLOTS
#if SLOTS > 2
		:: wtag[2] != 0 -> s = 2 + SLOTS
#endif
		fi;
		if
		:: s < SLOTS ->
			/* a tag not indexed: between operations, the keys are the index */
			if
			:: g_slot[1] == NONE -> k = 1
			:: g_slot[2] == NONE -> k = 2
#if TAGS > 2
			:: g_slot[3] == NONE -> k = 3
#endif
#if TAGS > 3
			:: g_slot[4] == NONE -> k = 4
#endif
			fi;
			wtag[s] = k
		:: else
		fi
	   };
		if
		:: s < SLOTS ->
			/* sb__tagindex_add_held(tag k, slot s) */
			if
			:: used >= BUCKETS / 2 -> rebuild()
			:: else
			fi;
#ifndef MUTANT_KEY_FIRST
			atomic {
				free_bucket(cur, HASH(k));
				if
				:: B(cur, fb) == EMPTY -> used++
				:: else
				fi;
				live++;
				bucket_of[s] = fb;
				B(cur, fb) = ENTRY(HASH(k), s) /* sb_store_release(&t->bucket[i], ...) */
			};
			key_write(s, k)
#else
			key_write(s, k);
			atomic {
				free_bucket(cur, HASH(k));
				if
				:: B(cur, fb) == EMPTY -> used++
				:: else
				fi;
				live++;
				bucket_of[s] = fb;
				B(cur, fb) = ENTRY(HASH(k), s)
			}
#endif
		:: s >= SLOTS ->
			/* sb__tagindex_del_held(slot s) */
			atomic {
				s = s - SLOTS;
				i = bucket_of[s];
				bucket_of[s] = NONE;
				live--;
				kseq[s] = kseq[s] + 1; /* key_write(NULL, 0): K1 */
				g_obs[wtag[s]] = false;
				r = 0;
				do
				:: r < READERS ->
					if
					:: inrcu[r] && g_want[r] == wtag[s] -> g_del[r] = true
					:: else
					fi;
					r++
				:: else -> break
				od;
				r = 0;
				wtag[s] = 0
			};
			key_store(s, 0); /* K2 */
			kseq[s] = kseq[s] + 1; /* K3 */
#ifndef MUTANT_NO_TOMB
			if
			:: atomic {
				B(cur, (i + 1) & MASK) != EMPTY ->
				B(cur, i) = TOMB /* a chain may pass here */
			   }
			:: atomic {
				B(cur, (i + 1) & MASK) == EMPTY ->
				/* no chain runs past here: empty it, and the tombstones just before it */
				B(cur, i) = EMPTY;
				used--;
				i = (i - 1) & MASK
			   };
				do
				:: atomic { B(cur, i) == TOMB -> B(cur, i) = EMPTY; used--; i = (i - 1) & MASK }
#ifdef MUTANT_CASCADE_FAR
				/* passes over one live entry to the tombstone before it */
				:: atomic {
					B(cur, i) != TOMB && B(cur, i) != EMPTY && B(cur, (i - 1) & MASK) == TOMB ->
					i = (i - 1) & MASK
				   }
#endif
				:: else -> break
				od
			fi
#else
			atomic { B(cur, i) = EMPTY; used-- }
#endif
		fi;
		atomic {
#ifndef SKIP_T5
			check_writer();
#endif
			i = 0; j = 0; k = 0; e = 0; fb = 0; old = 0; s = 0
		}
	od
}

/*
 * A reader: sb__tagindex_find. Its steps are its loads of shared memory;
 * what it decides from each load rides along with that load.
 */
proctype Reader(byte r)
{
	byte want, t, i, n, e, s, v, k, tries, res, f, x;
	bool open;

	do
	:: atomic { f == FINDS -> break }
	:: atomic {
		f < FINDS ->
		f++;
#ifdef WANT
		want = WANT; /* every lookup is for one tag: fewer states */
#else
		if
		:: want = 1
		:: want = 2
#if TAGS > 2
		:: want = 3
#endif
#if TAGS > 3
		:: want = 4
#endif
		fi;
#endif
		/* rcu_read_lock(), and the ghosts' start */
		inrcu[r] = 1;
		g_want[r] = want;
		g_pres[r] = (g_slot[want] != NONE);
		g_abs[r] = (g_slot[want] == NONE);
		g_obs0[r] = g_obs[want];
		g_del[r] = false
	   };
		atomic {
			t = cur; /* sb_load_acquire(&idx->table) */
			rt[r] = t;
			i = HOME(HASH(want));
			n = 0;
			res = ABSENT;
			open = false
		};
probe:
		atomic {
			if
			:: n == BUCKETS -> goto done
			:: else
			fi;
			e = B(t, i); /* sb_load_acquire(&t->bucket[i]) */
			if
			:: e == EMPTY -> e = 0; goto done
			:: e == TOMB || EHASH(e) != HASH(want) ->
				e = 0; n++; i = (i + 1) & MASK; goto probe
			:: else -> s = ESLOT(e); e = 0; tries = 0 /* key_matches */
			fi
		};
key:
		atomic {
			if
			:: tries == KSPINS -> /* -EAGAIN, unless a later bucket holds the tag */
				res = AGAIN; tries = 0; s = 0; n++; i = (i + 1) & MASK; goto probe
			:: else
			fi;
			tries++;
			v = kseq[s]; /* sb_load_acquire(&k->seq) */
			if
			:: v % 2 == 1 -> open = true; v = 0; goto key
			:: else
			fi
		};
		k = ktag[s]; /* the words and len */
		atomic {
			if
			:: kseq[s] == v -> /* the sequence is unchanged */
				if
#ifndef MUTANT_NO_KEY
				:: k == want -> res = FOUND; goto done
#else
				:: true -> res = FOUND; goto done /* a hash match taken for the tag */
#endif
				:: else -> k = 0; v = 0; tries = 0; s = 0; n++; i = (i + 1) & MASK; goto probe
				fi
			:: else -> open = true; k = 0; v = 0; goto key
			fi
		};
done:
		/* rcu_read_unlock(), and the answer */
		atomic {
			assert(res != FOUND || g_pres[r]); /* T1 */
#ifndef SKIP_T2
			assert(res != ABSENT || g_abs[r]); /* T2 */
#endif
			assert(res != AGAIN || open); /* T3 */
			assert(res != ABSENT || !g_obs0[r] || g_del[r]); /* T6 */
			if
			:: res == FOUND && !g_del[r] -> g_obs[want] = true
			:: else
			fi;
			inrcu[r] = 0;
			rt[r] = NONE;
			x = 0;
			do
			:: x < NT -> waits[x] = waits[x] & ~(1 << r); x++
			:: else -> break
			od;
			x = 0; i = 0; n = 0; e = 0; s = 0; v = 0; k = 0; tries = 0; t = 0; res = 0;
			want = 0; open = false
		}
	od
}

init
{
	byte i;

	atomic {
		i = 0;
		do
		:: i < NT -> tstate[i] = FREE; i++
		:: else -> break
		od;
		tstate[0] = CUR;
		cur = 0;
		spare = NONE;
		i = 0;
		do
		:: i < SLOTS -> bucket_of[i] = NONE; i++
		:: else -> break
		od;
		i = 0;
		do
		:: i <= TAGS -> g_slot[i] = NONE; i++
		:: else -> break
		od;
		i = 0;
		do
		:: i < READERS -> rt[i] = NONE; i++
		:: else -> break
		od;
#ifdef PREFILL
		/*
		 * Start one step short of a rebuild, in a state the writer reaches
		 * (add tag 2 to slot 1, tag 1 to slot 0, delete slot 1): tag 1 in
		 * slot 0 at bucket HOME + 1, a tombstone at its home bucket.
		 */
		B(0, HOME(HASH(2))) = TOMB;
		B(0, (HOME(HASH(1)) + 1) & MASK) = ENTRY(HASH(1), 0);
		bucket_of[0] = (HOME(HASH(1)) + 1) & MASK;
		wtag[0] = 1;
		ktag[0] = 1;
		kseq[0] = 2;
		kseq[1] = 4;
		g_slot[1] = 0;
		used = 2;
		live = 1;
#endif
		i = 0;
		run Writer();
		do
		:: i < READERS -> run Reader(i); i++
		:: else -> break
		od
	}
}
