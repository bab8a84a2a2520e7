/*
 * The timer wheel's lists and the walks over them (wheel.h says why a
 * walk holds its clients).  Pure list work: no I/O, no time, so that the
 * unit tests drive it alone.
 */
#include <stddef.h>

#include "worker.h"

_Static_assert(WHEEL_SLOTS <= 256, "struct client's wheel_slot is 8 bits");

#define CLIENT_OF(l)	((struct client *)((char *)(l) - \
			    offsetof(struct client, link)))

static void
list_init(struct wheel_link *head)
{
	head->next = head->prev = head;
}

static int
list_empty(const struct wheel_link *head)
{
	return head->next == head;
}

/* Put l at the head of a list. */
static void
link_in(struct wheel_link *head, struct wheel_link *l)
{
	l->next = head->next;
	l->prev = head;
	head->next->prev = l;
	head->next = l;
}

/* Take l off whatever list it is on. */
static void
link_out(struct wheel_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->next = l->prev = l;
}

/* Move every link of from to the end of to. */
static void
list_splice(struct wheel_link *to, struct wheel_link *from)
{
	if (list_empty(from))
		return;
	from->next->prev = to->prev;
	to->prev->next = from->next;
	from->prev->next = to;
	to->prev = from->prev;
	list_init(from);
}

void
wheel_init(struct wheel *wh, uint64_t sec)
{
	for (int i = 0; i < WHEEL_SLOTS; i++)
		list_init(&wh->slot[i]);
	wh->walks = NULL;
	wh->sec = sec;
}

void
wheel_add(struct wheel *wh, struct client *c, unsigned s)
{
	c->wheel_slot = s;
	c->in_walk = 0;
	link_in(&wh->slot[s], &c->link);
}

void
wheel_remove(struct client *c)
{
	link_out(&c->link);
	c->in_walk = 0;
}

void
wheel_move(struct wheel *wh, struct client *c, unsigned s)
{
	c->wheel_slot = s;
	if (c->in_walk)
		return;		/* its walk puts it there */
	link_out(&c->link);
	link_in(&wh->slot[s], &c->link);
}

/* Take the walk's clients off their slots, and enter it as the innermost
 * walk. */
static void
walk_begin(struct wheel *wh, struct wheel_walk *wk)
{
	list_init(&wk->todo);
	for (int i = 0; i < WHEEL_SLOTS; i++)
		if (wk->slot < 0 || wk->slot == i)
			list_splice(&wk->todo, &wh->slot[i]);
	for (struct wheel_link *l = wk->todo.next; l != &wk->todo; l = l->next)
		CLIENT_OF(l)->in_walk = 1;
	wk->outer = wh->walks;
	wh->walks = wk;
	wk->held = wk->outer;
	wk->at = wk->held != NULL ? &wk->held->todo : NULL;
	wk->started = 1;
}

/* The next client that an outer walk holds and this one is to visit, or
 * NULL when there is none left.  Those lists do not change meanwhile:
 * only their own walk, suspended in its body, takes clients off them. */
static struct client *
walk_held(struct wheel_walk *wk)
{
	while (wk->held != NULL) {
		wk->at = wk->at->next;
		if (wk->at == &wk->held->todo) {
			wk->held = wk->held->outer;
			wk->at = wk->held != NULL ? &wk->held->todo : NULL;
			continue;
		}
		struct client *c = CLIENT_OF(wk->at);
		if (wk->slot < 0 || c->wheel_slot == wk->slot)
			return c;
	}
	return NULL;
}

struct client *
wheel_next(struct wheel *wh, struct wheel_walk *wk)
{
	struct client *c;

	if (!wk->started)
		walk_begin(wh, wk);
	if ((c = walk_held(wk)) != NULL)
		return c;
	if (list_empty(&wk->todo)) {
		wh->walks = wk->outer;		/* walks end innermost first */
		return NULL;
	}
	c = CLIENT_OF(wk->todo.next);
	link_out(&c->link);
	c->in_walk = 0;
	link_in(&wh->slot[c->wheel_slot], &c->link);
	return c;
}
