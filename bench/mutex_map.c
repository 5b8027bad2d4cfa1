/* bench/mutex_map.c - see mutex_map.h. */
#include "mutex_map.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../coordinator/tagindex.h" /* sb__tag_hash: the same hash as snapbridge's index */

struct mm_entry {
	char *tag; /* the key, owned */
	uint64_t hash;
	char *schema;
	uint8_t *bytes;
	size_t len;
	struct mm_entry *next;
};

enum mm_event_kind { MM_OVERWRITE, MM_EVICTION };

struct mm_event {
	enum mm_event_kind kind;
	char *tag;   /* Overwrite: tag; Eviction: evicted_tag */
	char *other; /* Overwrite: prior_schema; Eviction: new_tag */
	uint32_t cap;
};

struct mm_map {
	pthread_mutex_t lock;
	uint32_t cap;
	struct mm_entry **buckets;
	size_t mask;
	size_t len;
	/* VecDeque<String>: a ring of owned tags, oldest at head */
	char **order;
	size_t order_mask, order_head, order_len;
	struct mm_event *events;
	size_t nevents, max_events;
	uint64_t events_dropped;
};

int mm_create(uint32_t cap, uint32_t max_events, struct mm_map **out)
{
	struct mm_map *m;
	size_t n = 1;

	if (!cap || !max_events)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	while (n < 2 * (size_t)cap + 2)
		n <<= 1;
	m->cap = cap;
	m->mask = n - 1;
	m->order_mask = n - 1;
	m->max_events = max_events;
	m->buckets = calloc(n, sizeof(*m->buckets));
	m->order = calloc(n, sizeof(*m->order));
	m->events = calloc(max_events, sizeof(*m->events));
	if (!m->buckets || !m->order || !m->events) {
		mm_destroy(m);
		return -ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	*out = m;
	return 0;
}

static void free_event(struct mm_event *e)
{
	free(e->tag);
	free(e->other);
}

static void free_entry(struct mm_entry *e)
{
	free(e->tag);
	free(e->schema);
	free(e->bytes);
	free(e);
}

void mm_destroy(struct mm_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; m->buckets && i <= m->mask; i++)
		for (struct mm_entry *e = m->buckets[i], *next; e; e = next) {
			next = e->next;
			free_entry(e);
		}
	for (size_t i = 0; m->order && i < m->order_len; i++)
		free(m->order[(m->order_head + i) & m->order_mask]);
	for (size_t i = 0; m->events && i < m->nevents; i++)
		free_event(&m->events[i]);
	if (m->buckets)
		pthread_mutex_destroy(&m->lock);
	free(m->buckets);
	free(m->order);
	free(m->events);
	free(m);
}

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

/* push_event: at the cap, drop the oldest by shifting the vector (Vec::remove(0)). */
static void push_event(struct mm_map *m, enum mm_event_kind kind, char *tag, char *other)
{
	if (m->nevents >= m->max_events) {
		free_event(&m->events[0]);
		memmove(&m->events[0], &m->events[1], (m->nevents - 1) * sizeof(m->events[0]));
		m->nevents--;
		m->events_dropped++;
	}
	m->events[m->nevents++] = (struct mm_event){ kind, tag, other, m->cap };
}

static struct mm_entry **find(struct mm_map *m, const char *tag, uint64_t hash)
{
	struct mm_entry **p = &m->buckets[hash & m->mask];

	for (; *p; p = &(*p)->next)
		if ((*p)->hash == hash && strcmp((*p)->tag, tag) == 0)
			return p;
	return p;
}

static void order_push_back(struct mm_map *m, char *tag)
{
	m->order[(m->order_head + m->order_len++) & m->order_mask] = tag;
}

static char *order_pop_front(struct mm_map *m)
{
	char *t;

	if (!m->order_len)
		return NULL;
	t = m->order[m->order_head];
	m->order_head = (m->order_head + 1) & m->order_mask;
	m->order_len--;
	return t;
}

/* order.iter().position(|k| k == tag) followed by order.remove(pos). */
static void order_remove_tag(struct mm_map *m, const char *tag)
{
	for (size_t i = 0; i < m->order_len; i++) {
		char **at = &m->order[(m->order_head + i) & m->order_mask];

		if (strcmp(*at, tag) != 0)
			continue;
		free(*at);
		for (size_t j = i; j + 1 < m->order_len; j++)
			m->order[(m->order_head + j) & m->order_mask] =
			    m->order[(m->order_head + j + 1) & m->order_mask];
		m->order_len--;
		return;
	}
}

int mm_store(struct mm_map *m, const char *tag, const char *schema, const void *report, size_t len)
{
	uint64_t hash = sb__tag_hash(tag, strlen(tag));
	uint8_t *bytes = malloc(len ? len : 1);
	char *schema_copy = dup_str(schema);
	char *order_tag = dup_str(tag);

	if (!bytes || !schema_copy || !order_tag) {
		free(bytes);
		free(schema_copy);
		free(order_tag);
		return -ENOMEM;
	}
	memcpy(bytes, report, len);
	pthread_mutex_lock(&m->lock);
	struct mm_entry **slot = find(m, tag, hash);
	if (*slot) {
		struct mm_entry *e = *slot;

		/* Overwrite{tag, prior_schema}: the prior schema string moves into the event. */
		push_event(m, MM_OVERWRITE, dup_str(tag), e->schema);
		free(e->bytes);
		e->bytes = bytes;
		e->len = len;
		e->schema = schema_copy;
		order_remove_tag(m, tag);
		order_push_back(m, order_tag);
		pthread_mutex_unlock(&m->lock);
		return 0;
	}
	struct mm_entry *e = malloc(sizeof(*e));
	char *key = dup_str(tag);
	if (!e || !key) {
		pthread_mutex_unlock(&m->lock);
		free(e);
		free(key);
		free(bytes);
		free(schema_copy);
		free(order_tag);
		return -ENOMEM;
	}
	*e = (struct mm_entry){ key, hash, schema_copy, bytes, len, NULL };
	*slot = e;
	m->len++;
	order_push_back(m, order_tag);
	while (m->len > m->cap) {
		char *evicted = order_pop_front(m);
		if (!evicted)
			break; /* cannot happen here: every entry has its order string */
		uint64_t h = sb__tag_hash(evicted, strlen(evicted));
		struct mm_entry **p = find(m, evicted, h);
		if (*p) {
			struct mm_entry *gone = *p;
			*p = gone->next;
			m->len--;
			free_entry(gone);
			push_event(m, MM_EVICTION, evicted, dup_str(tag));
		} else {
			free(evicted);
		}
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

size_t mm_len(struct mm_map *m)
{
	pthread_mutex_lock(&m->lock);
	size_t n = m->len;
	pthread_mutex_unlock(&m->lock);
	return n;
}

size_t mm_event_count(struct mm_map *m)
{
	pthread_mutex_lock(&m->lock);
	size_t n = m->nevents;
	pthread_mutex_unlock(&m->lock);
	return n;
}
