/*
 * ring/model/log.pml - the record log's publish / lap / validate protocol
 * (ring/log.h W1-W4, R1-R3) as SPIN checks it.
 *
 * Writers (several coordinator threads) store records under one lock and
 * copy their payloads after dropping it, exactly as
 * coordinator/bridge.c:store_prepared() does; one reader runs
 * consumers/consumer.c:sb_consumer_drain() (its reader, ring/log.c's
 * sb__reader_next() and sb__reader_pass()) with ring/log.c:sb__log_copy() against them. One reader is enough: readers never write the region, so
 * a second one cannot change what the first sees.
 *
 * The ring is RING blocks; a block stands for a run of 64-byte units. A
 * record is one header block plus 0..MAXLEN-1 payload blocks, and takes
 * at most half the ring, as in C. Every payload block the writer of store
 * k copies holds the value k, so a copy that mixes two stores is visible.
 *
 * Each step of the processes below is one atomic step of the model; the
 * C lines each step stands for are named in docs/ARCHITECTURE.md
 * ("The model"). SPIN explores every interleaving of these steps under
 * sequential consistency: the C code's release/acquire pairs (named in
 * ring/log.h) are what entitle it to that assumption for these accesses.
 *
 * Properties (assertions):
 *   P1 no torn record: a copy the reader accepts (SB_READ_OK) is the
 *      record it set out to read, committed, every payload block its own.
 *   P2 no reused record: when the reader accepts a copy, the writer had
 *      not started rewriting any of its blocks.
 *   P3 exact accounting: every store gets exactly one outcome; a store is
 *      counted lapped only if the writer really reclaimed it; and at the
 *      end delivered + superseded + evicted + lapped == stores.
 *   P4 an honest writer never makes the reader report a corrupt record
 *      (-EBADMSG) or a protocol error (-EPROTO).
 *   P5 (writer) after each store the resident count equals the number of
 *      resident slots.
 *
 * Mutants (each must make SPIN find a violation; `make model` checks):
 *   MUTANT_TAIL_LATE    W1's tail store after the new header is written
 *   MUTANT_NO_RECHECK   the reader skips R3 after its copy
 *   MUTANT_RECLAIM_OWN_SLOT  reclaim evicts the record the store is
 *                       overwriting (the bug fixed in 38a22d5)
 */

#ifndef RING
#define RING 4
#endif
#ifndef MAXLEN
#define MAXLEN 2 /* RING / 2: a record takes at most half the ring */
#endif
#ifndef STORES
#define STORES 4
#endif
#ifndef WRITERS
#define WRITERS 2
#endif
#ifndef TAGS
#define TAGS 2
#endif
#ifndef CAP
#define CAP 1 /* max_snapshots */
#endif

#define OFF(p) ((p) % RING)
#define NONE 255

/* sb_rec.commit */
#define JUNK 0 /* anything that is neither: zeroed header, payload bytes */
#define BUSY 1
#define COMMITTED 2
/* sb_rec.kind */
#define SNAPSHOT 1
#define PAD 2
/* sb_rec.fate */
#define RESIDENT 1
#define SUPERSEDED 2
#define EVICTED_CAP 3
#define EVICTED_BYTES 4
/* sb__log_copy results */
#define READ_OK 0
#define READ_LAPPED 1
#define READ_BUSY 2

/* ---- the shared region ---- */
byte head, tail; /* sb_hot.log_head / log_tail, free-running positions */
/* the header fields of the record starting at each block */
byte h_commit[RING], h_len[RING], h_kind[RING], h_seq[RING], h_fate[RING], h_slot[RING];
byte data[RING]; /* payload blocks: the store number that wrote them */

/* ---- coordinator-private state (bridge.c), under the lock ---- */
bit lk;
byte next_seq; /* sb_hot.store_seq */
byte slot_seq[TAGS], slot_pos[TAGS]; /* the slot index: resident store of each tag */
byte resident, resident_cursor;
byte writers_done;

/* ---- ghosts: what really happened, for the assertions only ---- */
byte g_blk[RING];         /* store whose record owns each block (0: none / pad) */
byte g_pos[STORES + 1];   /* where store k's record starts */
bool g_over[STORES + 1];  /* a block of store k's record has been rewritten */
bool g_recl[STORES + 1];  /* the tail has passed store k's record */
bool g_comm[STORES + 1];  /* store k's payload was committed (W4) */
byte g_acct[STORES + 1];  /* outcomes the reader gave store k */

/* Does the slot index say the record at block o is its tag's resident one? */
#define SLOT_HOLDS(o) (h_kind[o] == SNAPSHOT && slot_seq[h_slot[o]] == h_seq[o])

/* The tail moved to t: every record wholly below it is reclaimed. */
inline publish_tail(t)
{
	d_step {
		tail = t;
		i = 1;
		do
		:: i <= STORES ->
			if
			:: g_pos[i] != NONE && g_pos[i] < t -> g_recl[i] = true
			:: else
			fi;
			i++
		:: else -> break
		od;
		i = 0
	}
}

proctype Writer()
{
	byte k, t, rlen, pad, wh, wt, moved, i, o, p, replacing;
	bool self_evicted, found;

	do
	:: atomic { lk == 0 && next_seq < STORES -> lk = 1; next_seq++; k = next_seq }
		/* a store of a random tag and size (store_prepared, under the lock) */
		select(t : 0 .. TAGS - 1);
		select(rlen : 1 .. MAXLEN);
		self_evicted = false;
		replacing = (slot_seq[t] != 0 -> t : NONE); /* store_prepared's `found` */
		if
		:: slot_seq[t] != 0 ->
			/* overwrite: the old record is superseded */
			h_fate[OFF(slot_pos[t])] = SUPERSEDED
		:: slot_seq[t] == 0 && resident >= CAP ->
			/* make_room(): evict the oldest resident record */
			p = (resident_cursor < tail -> tail : resident_cursor);
			found = false;
			do
			:: p == head -> break
			:: p != head && h_fate[OFF(p)] == RESIDENT && SLOT_HOLDS(OFF(p)) ->
				h_fate[OFF(p)] = EVICTED_CAP;
				d_step { slot_seq[h_slot[OFF(p)]] = 0; resident-- };
				found = true;
				p = p + h_len[OFF(p)];
				break
			:: else -> p = p + h_len[OFF(p)]
			od;
			resident_cursor = p;
			self_evicted = !found
		:: else
		fi;

		/* W1 sb__log_reserve(): reclaim until the record fits */
		wh = head;
		wt = tail;
		pad = (RING - OFF(wh) < rlen -> RING - OFF(wh) : 0);
		moved = wt;
		do
		:: wh + pad + rlen - wt > RING ->
			o = OFF(wt);
			(h_commit[o] == COMMITTED); /* sb__rec_await_commit() */
			if
#ifndef MUTANT_RECLAIM_OWN_SLOT
			:: h_kind[o] != PAD && SLOT_HOLDS(o) && h_slot[o] != replacing ->
#else
			:: h_kind[o] != PAD && SLOT_HOLDS(o) ->
#endif
				/* reclaim_record(): evicted by bytes */
				h_fate[o] = EVICTED_BYTES;
				d_step { slot_seq[h_slot[o]] = 0; resident-- }
			:: else
			fi;
			wt = wt + h_len[o]
		:: else -> break
		od;
#ifndef MUTANT_TAIL_LATE
		if
		:: wt != moved -> publish_tail(wt) /* W1: tail, then release fence */
		:: else
		fi;
#endif
		/* ghost: the bytes [wh, wh + pad + rlen) now change hands */
		atomic {
			i = 0;
			do
			:: i < pad + rlen ->
				o = OFF(wh + i);
				g_over[g_blk[o]] = true;
				g_blk[o] = (i < pad -> 0 : k);
				i++
			:: else -> break
			od;
			g_over[0] = false;
			g_pos[k] = wh + pad;
			i = 0; o = 0; wt = 0; moved = 0; p = 0; found = false
		};
		/* W2: a pad to the ring's end, then the new header, BUSY */
		if
		:: pad > 0 ->
			o = OFF(wh);
			d_step { h_commit[o] = JUNK; h_len[o] = 0; h_kind[o] = 0; h_seq[o] = 0; h_fate[o] = 0 };
			d_step { h_len[o] = pad; h_kind[o] = PAD; h_commit[o] = COMMITTED };
			wh = wh + pad
		:: else
		fi;
		o = OFF(wh);
		d_step { h_commit[o] = JUNK; h_len[o] = 0; h_kind[o] = 0; h_seq[o] = 0; h_fate[o] = 0 };
		d_step { h_commit[o] = BUSY; h_len[o] = rlen };
		d_step {
			h_fate[o] = (self_evicted -> EVICTED_CAP : RESIDENT);
			h_kind[o] = SNAPSHOT; h_seq[o] = k; h_slot[o] = t
		};
#ifdef MUTANT_TAIL_LATE
		if
		:: wt != moved -> publish_tail(wt)
		:: else
		fi;
#endif
		head = wh + rlen; /* W3 */
		/* the slot index (its seqlock is slot.pml's business) */
		d_step {
			if
			:: !self_evicted ->
				if
				:: replacing == NONE -> resident++
				:: else
				fi;
				slot_seq[t] = k;
				slot_pos[t] = wh
			:: else
			fi
		};
		/* P5: the resident count is the number of resident slots */
		d_step {
			i = 0; p = 0;
			do
			:: i < TAGS -> p = p + (slot_seq[i] != 0 -> 1 : 0); i++
			:: else -> break
			od;
			assert(p == resident);
			i = 0; p = 0
		};
		atomic { lk = 0; t = 0; pad = 0; replacing = 0 };
		/* the copy, outside the lock; payload bytes clobber any old header word */
		i = 1;
		do
		:: i < rlen -> d_step { data[OFF(wh + i)] = k; h_commit[OFF(wh + i)] = JUNK }; i++
		:: else -> break
		od;
		atomic { /* W4 */
			h_commit[o] = COMMITTED; g_comm[k] = true;
			k = 0; t = 0; rlen = 0; pad = 0; wh = 0; i = 0; o = 0; self_evicted = false
		}
	:: atomic { next_seq == STORES -> break }
	od;
	writers_done++
}

/* ---- the reader: sb_consumer_drain() (sb__reader_*) + sb__log_copy() ---- */
byte r_pos, r_head, r_cursor;
bool r_gapok;
byte n_delivered, n_superseded, n_evicted, n_lapped;

/* Dead locals are zeroed so that they do not split states. */
inline forget()
{
	res = 0; ln = 0; o = 0; gap = 0; id = 0; i = 0;
	c_commit = 0; c_len = 0; c_kind = 0; c_seq = 0; c_fate = 0;
	lenok = false; lapped = false; over = false;
	i = 1;
	do
	:: i < MAXLEN -> c_data[i] = 0; i++
	:: else -> break
	od;
	i = 0
}

proctype Reader()
{
	byte res, ln, o, gap, s, id, i;
	byte c_commit, c_len, c_kind, c_seq, c_fate;
	byte c_data[MAXLEN];
	bool lenok, lapped, over;

	r_pos = tail; /* attach: start at the tail */
	r_gapok = true;
drain:
	r_head = head; /* R1 */
	do
	:: r_pos == r_head -> break
	:: r_pos != r_head ->
		o = OFF(r_pos);
		if
		:: r_head - r_pos > RING -> res = READ_LAPPED
		:: else ->
			/* sb__log_copy() */
			if
			:: tail > r_pos -> res = READ_LAPPED
			:: else ->
				d_step { c_commit = h_commit[o]; id = g_blk[o] }; /* R2 */
				ln = h_len[o];
				lenok = (ln >= 1 && ln <= RING - o && ln <= r_head - r_pos);
				if
				:: c_commit == BUSY && lenok ->
					/* copy_checked() of the header alone */
					d_step { c_seq = h_seq[o]; c_kind = h_kind[o]; c_len = h_len[o] };
#ifndef MUTANT_NO_RECHECK
					lapped = (tail > r_pos); /* R3 */
#else
					lapped = false;
#endif
					if
					:: lapped -> res = READ_LAPPED
					:: else ->
						assert(c_len == ln); /* P4: else -EBADMSG */
						res = READ_BUSY
					fi
				:: c_commit == COMMITTED && lenok ->
					/* copy_checked() of the whole record, then the fate */
					d_step { c_seq = h_seq[o]; c_kind = h_kind[o]; c_len = h_len[o] };
					i = 1;
					do
					:: i < ln -> c_data[i] = data[OFF(r_pos + i)]; i++
					:: else -> break
					od;
					c_fate = h_fate[o];
#ifndef MUTANT_NO_RECHECK
					d_step { lapped = (tail > r_pos); over = g_over[id] }; /* R3 */
#else
					d_step { lapped = false; over = g_over[id] };
#endif
					if
					:: lapped -> res = READ_LAPPED
					:: else ->
						assert(c_len == ln); /* P4: else -EBADMSG */
						res = READ_OK;
#ifndef SKIP_P2 /* lets a mutant run show that P1 alone catches it too */
						/* P2: nothing of it has been rewritten */
						assert(!over);
#endif
						/* P1: the whole copy is the committed record it meant to read */
						if
						:: c_kind == SNAPSHOT ->
							assert(id != 0 && c_seq == id && g_comm[id]);
							i = 1;
							do
							:: i < ln -> assert(c_data[i] == id); i++
							:: else -> break
							od
						:: else -> assert(c_kind == PAD && id == 0)
						fi
					fi
				:: else ->
					/* neither a BUSY nor a COMMITTED record: only a lap explains it */
					lapped = (tail > r_pos);
					assert(lapped); /* P4: else -EBADMSG */
					res = READ_LAPPED
				fi
			fi
		fi;
		if
		:: res == READ_LAPPED ->
			/* resume at the writer's tail; the head again, after it */
			atomic { r_pos = tail; forget() };
			r_head = head;
			r_gapok = true
		:: res == READ_OK && c_kind == PAD -> atomic { r_pos = r_pos + c_len; forget() }
		:: res == READ_BUSY ->
			atomic { assert(c_kind == SNAPSHOT); forget() }; /* P4 */
			goto drain /* a live writer is copying it: drain again later */
		:: res == READ_OK && c_kind != PAD ->
			d_step {
				assert(c_kind == SNAPSHOT); /* P4 */
				/* sb__reader_pass(): P4, then P3 for every store skipped by a lap */
				assert(c_seq > r_cursor);
				gap = c_seq - r_cursor - 1;
				assert(gap == 0 || r_gapok);
				s = r_cursor + 1;
				do
				:: s < c_seq -> assert(g_recl[s]); g_acct[s]++; n_lapped++; s++
				:: else -> break
				od;
				/* classify() */
				if
				:: c_fate == RESIDENT -> n_delivered++
				:: c_fate == SUPERSEDED -> n_superseded++
				:: c_fate == EVICTED_CAP || c_fate == EVICTED_BYTES -> n_evicted++
				:: else -> assert(false) /* P4: unknown fate */
				fi;
				g_acct[c_seq]++;
				/* account() */
				r_cursor = c_seq;
				r_gapok = false;
				r_pos = r_pos + c_len;
				s = 0;
				forget()
			}
		fi
	od;
	if
	:: writers_done == WRITERS && r_pos == head -> skip
	:: else -> goto drain
	fi;
	/* P3: each store exactly once, and the sum */
	atomic {
		s = 1;
		do
		:: s <= STORES -> assert(g_acct[s] == 1); s++
		:: else -> break
		od;
		assert(n_delivered + n_superseded + n_evicted + n_lapped == STORES)
	}
}

init
{
	byte i;

	d_step {
		i = 0;
		do
		:: i <= STORES -> g_pos[i] = NONE; i++
		:: else -> break
		od;
		i = 0
	};
	atomic {
		i = 0;
		do
		:: i < WRITERS -> run Writer(); i++
		:: else -> break
		od;
		run Reader()
	}
}
