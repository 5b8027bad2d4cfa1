/*
 * The bridge lock (coordinator/lock.h): mutual exclusion under contention,
 * and a waiter that gave up spinning and went to sleep is woken by the
 * unlock, with membarrier and with the fenced fallback.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "../coordinator/lock.h"

struct counted {
	struct sb_lock lock;
	uint64_t inside; /* plain: only a lock holder touches it */
	uint64_t total;
	atomic_int overlaps;
};

static void *hammer(void *arg)
{
	struct counted *c = arg;

	for (int i = 0; i < 200000; i++) {
		sb__lock(&c->lock);
		if (c->inside++ != 0)
			atomic_fetch_add(&c->overlaps, 1);
		c->total++;
		c->inside--;
		sb__unlock(&c->lock);
	}
	return NULL;
}

static void excludes(bool fenced)
{
	struct counted c = { .inside = 0 };
	pthread_t th[4];

	sb__lock_init(&c.lock);
	if (fenced)
		c.lock.fenced = true;
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, hammer, &c), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(atomic_load(&c.overlaps), 0, "two holders at once");
	cr_assert_eq(c.total, 4 * 200000ull, "an increment under the lock was lost");
	cr_assert_eq(c.lock.held, 0);
	cr_assert_eq(c.lock.sleepers, 0);
}

Test(lock, four_threads_never_hold_it_at_once, .timeout = 120)
{
	excludes(false);
}

Test(lock, four_threads_never_hold_it_at_once_with_the_fenced_unlock, .timeout = 120)
{
	excludes(true);
}

struct sleeper {
	struct sb_lock *lock;
	atomic_int took;
};

static void *take_once(void *arg)
{
	struct sleeper *s = arg;

	sb__lock(s->lock);
	atomic_store(&s->took, 1);
	sb__unlock(s->lock);
	return NULL;
}

/*
 * The holder keeps the lock long past the waiter's spin, so the waiter
 * counts itself a sleeper and sleeps in the futex; the unlock must wake it
 * (the test's timeout is what a lost wake-up would hit).
 */
static void wakes_a_sleeper(bool fenced)
{
	struct sb_lock lock;
	struct sleeper s = { &lock, 0 };
	pthread_t th;

	sb__lock_init(&lock);
	if (fenced)
		lock.fenced = true;
	sb__lock(&lock);
	cr_assert_eq(pthread_create(&th, NULL, take_once, &s), 0);
	while (sb_load_relaxed(&lock.sleepers) == 0)
		sched_yield();
	nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL); /* let it reach FUTEX_WAIT */
	cr_assert_eq(atomic_load(&s.took), 0, "the waiter took a held lock");
	sb__unlock(&lock);
	pthread_join(th, NULL);
	cr_assert_eq(atomic_load(&s.took), 1);
	cr_assert_eq(lock.sleepers, 0);
}

Test(lock, an_unlock_wakes_a_waiter_asleep_on_the_futex, .timeout = 30)
{
	wakes_a_sleeper(false);
}

Test(lock, an_unlock_wakes_a_sleeping_waiter_with_the_fenced_unlock, .timeout = 30)
{
	wakes_a_sleeper(true);
}
