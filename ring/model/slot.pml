/*
 * ring/model/slot.pml - the slot index seqlock (ring/slots.c, ck_sequence)
 * as SPIN checks it.
 *
 * The coordinator rewrites a slot under its lock (one writer at a time,
 * coordinator/bridge.c: store_prepared, clear_slot) between
 * sb__slot_write_begin (S1) and sb__slot_write_end (S2); consumers copy it
 * with sb__slot_read (sb_consumer_len / sb_consumer_has). A slot is
 * FIELDS words (store_seq, record_pos, tag, ...); update v writes the value
 * v into each of them, one store at a time, so a copy that mixes two
 * updates is visible. The writer may die inside a write section
 * (CRASH), leaving the sequence odd forever, as a SIGKILLed coordinator
 * would.
 *
 * Properties (assertions):
 *   Q1 a copy the reader accepts holds one complete update: every field
 *      holds the value of the last update finished (S2) when the reader
 *      loaded the even sequence it validated against.
 *   Q2 the reader never waits forever: after TRIES attempts it gives up
 *      (-EAGAIN), and giving up is only allowed while a write section
 *      was open at some attempt (never against a quiet, even slot).
 *
 * Mutant: MUTANT_NO_RETRY skips ck_sequence_read_retry's re-check.
 */

#ifndef FIELDS
#define FIELDS 3
#endif
#ifndef UPDATES
#define UPDATES 3
#endif
#ifndef READERS
#define READERS 1 /* readers only load: a second one sees nothing new */
#endif
#ifndef TRIES
#define TRIES 3 /* 10000 in ring/slots.c; the count does not change the logic */
#endif

byte seq;		/* sb_slot.seq (ck_sequence_t) */
byte field[FIELDS];	/* the rest of struct sb_slot */
byte g_done;		/* ghost: the last update whose S2 has run */
bool g_crashed;

proctype Writer()
{
	byte v, i;

	v = 1;
	do
	:: v <= UPDATES ->
		seq = seq + 1; /* S1: ck_sequence_write_begin: odd, then store fence */
		i = 0;
		do
		:: i < FIELDS -> field[i] = v; i++
#ifdef CRASH
		:: i < FIELDS -> g_crashed = true; goto dead /* SIGKILL mid-update */
#endif
		:: i == FIELDS -> break
		od;
		atomic { seq = seq + 1; g_done = v }; /* S2: store fence, then even */
		v++; i = 0
	:: v > UPDATES -> break
	od;
dead:
	skip
}

proctype Reader()
{
	byte tries, v, vb, i, c[FIELDS];
	bool saw_open;

	tries = 0;
	saw_open = false;
	do
	:: tries == TRIES ->
		/* -EAGAIN: only a write section that stays open justifies it */
		assert(saw_open);
		break
	:: tries < TRIES ->
		tries++;
		atomic { v = seq; vb = g_done }; /* ck_pr_load_uint */
		if
		:: v % 2 == 1 -> saw_open = true /* a write section is open: stall, retry */
		:: else ->
			/* ck_pr_fence_load; memcpy */
			i = 0;
			do
			:: i < FIELDS -> c[i] = field[i]; i++
			:: else -> break
			od;
#ifndef MUTANT_NO_RETRY
			if
			:: seq != v -> saw_open = true /* ck_sequence_read_retry: changed, retry */
			:: else ->
#else
			if
			:: true ->
#endif
				/* Q1: one whole, finished update */
				i = 1;
				do
				:: i < FIELDS -> assert(c[i] == c[0]); i++
				:: else -> break
				od;
				assert(c[0] == vb);
				break
			fi
		fi
	od
}

init
{
	byte r = 0;

	atomic {
		run Writer();
		do
		:: r < READERS -> run Reader(); r++
		:: else -> break
		od
	}
}
