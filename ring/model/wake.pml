/*
 * ring/model/wake.pml - the wake protocol (ring/wake.h) as SPIN checks it:
 * publishers, the serving thread's arm batches, the waker thread, one
 * honest consumer asleep on its bell, and a hostile consumer that sends
 * whatever arms and writes whatever it likes into its own page.
 *
 * What is modelled, step for step with ring/wake.h:
 *   Writer  (WRITERS threads, STORES records in all): reserve a record
 *           (head), N1 commit it, N3 test armed's REC bit, N4 take it and
 *           kick the waker (fetch_or; wake it if it was ASLEEP).
 *   Server  receives an arm from either connection (the latest per
 *           consumer is kept), or runs a batch: under the table lock, ring
 *           an arm that is behind already, else M1 mark it; M2 set the
 *           batch's channel bits, M4 ring each marked
 *           consumer with news, then keep only the bits some armed
 *           consumer still waits on. M3 (membarrier) is the sequential
 *           consistency SPIN assumes anyway.
 *   Waker   K1 takes the kicked channels (exchange with 0) and rings each
 *           armed consumer on one of them; with nothing kicked it goes to
 *           sleep (CAS 0 -> ASLEEP, FUTEX_WAIT_PRIVATE on the kick word).
 *   ring(i) F1 clear the mark, F2 bump the bell, F3 wake a sleeper on it.
 *   Honest  (peer 0) C1 load its bell, C2 read every committed record in
 *           order, C3 send an arm unless the one it holds is still good
 *           (same position, bell unmoved), C4 FUTEX_WAIT on the bell.
 *   Hostile (peer 1) up to HOSTILE_OPS times, in any order: an arm on any
 *           channel with any position (behind, at, ahead of the head), a
 *           write to its own bell, a sleep on its own bell.
 * FUTEX_WAIT(word, v) is "sleep if word == v" in one step, woken by the
 * matching wake; a sleep that nothing ends is allowed only where the
 * real code has a timeout the model leaves out on purpose: the honest
 * consumer's 50 ms slice and the heartbeat's safety net are NOT
 * modelled, so a lost wake-up shows as a consumer asleep forever.
 *
 * Properties:
 *   W1 (Watch, at the end) when nothing can move any more, the honest
 *      consumer has read every record: no wake-up is lost, whatever the
 *      hostile consumer does and however the threads interleave.
 *   W2 the honest consumer reads only committed records, in order.
 *
 * Mutants (check.sh: SPIN must find each):
 *   MUTANT_FLAG_FIRST  the store path tests armed before its commit (N3
 *                      before N1)
 *   MUTANT_NO_RECHECK  the batch marks arms but never looks for news (no M4)
 *   MUTANT_KEEP_BATCH  M4's end keeps only the bits of this batch's arms: a
 *                      hostile's batch takes the bit of an honest arm made
 *                      in an earlier batch
 *   MUTANT_HELD_BLIND  C3 thinks the arm it sent is still held though its
 *                      bell moved (a ring spent it), and sends none
 *   MUTANT_KICK_NO_WAKE the kick never wakes a sleeping waker
 */

#ifndef STORES
#define STORES 3
#endif
#ifndef WRITERS
#define WRITERS 2
#endif
#ifndef HOSTILE_OPS
#define HOSTILE_OPS 2
#endif

#define NPEER 2 /* 0 honest, 1 hostile */
#define REC 1
#define ACC 2
#define ASLEEP 4
#ifndef CONNQ
#define CONNQ 2
#endif

byte head;		/* records reserved (log_head, in records) */
bit commit[STORES + 2];	/* commit[k]: record k (1-based) is committed */
byte armed;		/* sb_wake.armed: channel bits */
byte kick;		/* sb_wake.kick: channel bits | ASLEEP */
bit waker_asleep;	/* the waker is inside FUTEX_WAIT_PRIVATE */
byte bell[NPEER];	/* each consumer's own page's bell */
bit bell_asleep[NPEER]; /* a thread of peer i is inside FUTEX_WAIT on its bell */
/* the serving thread's table, under lk */
bit lk;
bit t_armed[NPEER];
byte t_chans[NPEER];
byte t_pos[NPEER];
bit t_fresh[NPEER];
chan conn[NPEER] = [CONNQ] of { byte, byte }; /* arms: channels, position */
byte h_pos;				      /* the honest consumer's position (records read) */
byte writers_done;

inline lock()
{
	atomic { lk == 0 -> lk = 1 }
}

inline unlock()
{
	lk = 0
}

/* Has anything been published past pos on chans? (sb__wake_news) */
#define NEWS(pos, chans) (((chans) & REC) && (pos) < STORES && commit[(pos) + 1])

/* F1-F3, lock held */
inline ring(i)
{
	t_armed[i] = 0;
	bell[i] = bell[i] + 1;
	atomic { bell_asleep[i] = 0 }
}

proctype Writer()
{
	byte my, taken, old;

	do
	:: atomic { head < STORES -> head++; my = head }
#ifdef MUTANT_FLAG_FIRST
		atomic { taken = armed & REC; armed = armed & ~REC };
		commit[my] = 1;
#else
		commit[my] = 1; /* N1 */
		/* N3-N4: a test, then a fetch_and; one step, as N3 alone changes nothing */
		atomic { taken = armed & REC; armed = armed & ~REC };
#endif
		if
		:: taken ->
			atomic {
				old = kick;
				kick = kick | taken;
				taken = 0
			};
#ifndef MUTANT_KICK_NO_WAKE
			atomic {
				if
				:: (old & ASLEEP) -> waker_asleep = 0 /* FUTEX_WAKE_PRIVATE */
				:: else -> skip
				fi;
				old = 0
			}
#endif
		:: else -> skip
		fi;
		my = 0
	:: atomic { head == STORES -> writers_done++ }; break
	od
}

/* M1 for peer i: its latest arm becomes the table's, unless it is behind already: rung at once. */
inline mark(i)
{
	if
	:: has_next[i] && NEWS(n_pos[i], n_chans[i]) ->
		has_next[i] = 0;
		ring(i);
		n_chans[i] = 0;
		n_pos[i] = 0
	:: has_next[i] && !NEWS(n_pos[i], n_chans[i]) ->
		has_next[i] = 0;
		t_armed[i] = 1;
		t_chans[i] = n_chans[i];
		t_pos[i] = n_pos[i];
		t_fresh[i] = 1;
#ifdef MUTANT_KEEP_BATCH
		has_batch[i] = 1;
#endif
		chans = chans | n_chans[i];
		n_chans[i] = 0;
		n_pos[i] = 0
	:: else -> skip
	fi
}

/* M4 for peer i: ring a fresh arm that has news; count what stays armed. */
inline recheck(i)
{
#ifndef MUTANT_NO_RECHECK
	if
	:: t_fresh[i] && t_armed[i] && NEWS(t_pos[i], t_chans[i]) -> ring(i)
	:: else -> skip
	fi;
#endif
	t_fresh[i] = 0;
#ifdef MUTANT_KEEP_BATCH
	if
	:: t_armed[i] && has_batch[i] -> still = still | t_chans[i]
	:: else -> skip
	fi;
	has_batch[i] = 0
#else
	if
	:: t_armed[i] -> still = still | t_chans[i]
	:: else -> skip
	fi
#endif
}

proctype Server()
{
	byte c, p, chans, still;
	bit has_next[NPEER];
	byte n_chans[NPEER], n_pos[NPEER];
#ifdef MUTANT_KEEP_BATCH
	bit has_batch[NPEER];
#endif

end:
	do
	:: atomic { conn[0]?c, p -> has_next[0] = 1; n_chans[0] = c; n_pos[0] = p; c = 0; p = 0 }
	:: atomic { conn[1]?c, p -> has_next[1] = 1; n_chans[1] = c; n_pos[1] = p; c = 0; p = 0 }
	:: (has_next[0] || has_next[1]) ->
		/* M1, under the table lock (nobody but lock holders reads the table) */
		atomic { lk == 0 -> lk = 1; mark(0); mark(1); lk = 0 };
		if
		:: chans == 0 -> goto done /* every arm was behind and rung: no M2-M4 */
		:: else -> skip
		fi;
		atomic { armed = armed | chans; chans = 0 }; /* M2; M3 is SPIN's sequential consistency */
		/* M4: each check is one step, so a store can land between them */
		lock();
		recheck(0);
		recheck(1);
		atomic { armed = armed & still; still = 0 };
		unlock();
done:
		skip
	od
}

proctype Waker()
{
	byte pending;

end:
	do
	:: atomic { pending = kick & (REC | ACC); kick = 0 }; /* K1 */
		if
		:: pending ->
			atomic {
				lk == 0 -> lk = 1;
				if
				:: t_armed[0] && (t_chans[0] & pending) -> ring(0)
				:: else -> skip
				fi;
				if
				:: t_armed[1] && (t_chans[1] & pending) -> ring(1)
				:: else -> skip
				fi;
				lk = 0;
				pending = 0
			}
		:: else ->
			atomic { if :: kick == 0 -> kick = ASLEEP :: else -> skip fi };
			atomic { if :: kick == ASLEEP -> waker_asleep = 1 :: else -> skip fi };
end_w:
			waker_asleep == 0
		fi
	od
}

proctype Honest()
{
	byte g, a_bell, a_pos;
	bit a_valid;

	do
	:: h_pos == STORES -> break
	:: else ->
		g = bell[0]; /* C1 */
		if
		:: commit[h_pos + 1] -> /* C2: news: drain it */
			assert(h_pos + 1 <= head); /* W2 */
			h_pos++
		:: else ->
			if
#ifdef MUTANT_HELD_BLIND
			:: !(a_valid && a_pos == h_pos) ->
#else
			:: !(a_valid && a_bell == g && a_pos == h_pos) -> /* C3 */
#endif
				atomic {
					conn[0]!REC, h_pos;
					a_valid = 1;
					a_bell = g;
					a_pos = h_pos
				}
			:: else -> skip
			fi;
			atomic { if :: bell[0] == g -> bell_asleep[0] = 1 :: else -> skip fi }; /* C4 */
			bell_asleep[0] == 0
		fi;
		g = 0
	od
}

proctype Hostile()
{
	byte ops;

	do
	:: ops < HOSTILE_OPS ->
		ops++;
		if
		:: conn[1]!REC, 0 /* behind: news at once */
		:: conn[1]!REC, STORES /* ahead: never news */
		:: conn[1]!ACC, 0 /* a channel nobody publishes */
		:: conn[1]!(REC | ACC), 1
		:: bell[1] = 0 /* scribbles its own page */
		:: bell[1] = bell[1] + 7
		:: atomic { bell_asleep[1] = 1 }; /* one of its threads asleep on its bell */
end_h:
			bell_asleep[1] == 0
		fi
	:: ops == HOSTILE_OPS -> break
	od
}

/* W1: once nothing can move, every record was read. */
proctype Watch()
{
	timeout -> assert(h_pos == STORES)
}

init
{
	atomic {
		byte w = 0;
		do
		:: w < WRITERS -> run Writer(); w++
		:: else -> break
		od;
		run Server();
		run Waker();
		run Honest();
		run Hostile();
		run Watch()
	}
}
