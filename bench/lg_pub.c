/*
 * The publisher child: one connection that publishes at a fixed rate,
 * message i due at pub_go_ns + i/rate, round-robin over the topics.  Each
 * payload starts with the time the message was due (CLOCK_MONOTONIC ns), not
 * the time it was written, so that a server that pushes back on the
 * publisher is charged for the delay (no coordinated omission).  Messages
 * already due are written together, in one write().  A server that
 * cannot take the messages as fast holds the publisher back (TCP); after
 * the step's duration plus PUB_GRACE_NS the publisher gives up, and only
 * the messages it wrote in full count as published.  With --reconnect a
 * connection the server closes is made again (a restart) and the message
 * being written when it closed is written whole on the new one.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

#define PUB_BUF		(256 * 1024)	/* bytes written per write() at most */
#define PUB_MAX_BATCH	8192		/* messages in one write() at most */
#define PUB_GRACE_NS	10000000000ull	/* a step may overrun its duration by this */

struct pub {
	const struct lg_opts *o;
	struct lg_ctl	*ctl;
	int		 fd;
	char		*out;		/* PUB_BUF */
	size_t		 olen, ooff;	/* bytes in out, bytes of them written */
	size_t		 ends[PUB_MAX_BATCH]; /* where each message in out ends */
	int		 nends;
	char		 in[65536];	/* replies, read and dropped */
	size_t		 inlen;
};

static void
pub_fail(struct pub *p, const char *what)
{
	snprintf(p->ctl->pub_error, sizeof(p->ctl->pub_error), "%s: %s", what,
	    errno ? strerror(errno) : "closed");
	p->ctl->pub_done = 1;
	_exit(1);
}

/* Read one reply frame while still blocking (the handshake): NULL, or
 * what went wrong. */
static const char *
pub_expect(struct pub *p)
{
	struct wire_ev ev;
	ssize_t r;
	long k;

	for (;;) {
		k = wire_parse(p->o->proto, p->in, p->inlen, &ev);
		if (k > 0) {
			memmove(p->in, p->in + k, p->inlen - (size_t)k);
			p->inlen -= (size_t)k;
			return ev.type == EV_ERR ? "refused" : NULL;
		}
		if (k < 0)
			return "protocol error";
		r = read(p->fd, p->in + p->inlen, sizeof(p->in) - p->inlen);
		if (r <= 0)
			return "handshake";
		p->inlen += (size_t)r;
	}
}

static const char *pub_connect(struct pub *);

/*
 * The server closed the publisher: the end of the step, or with
 * --reconnect a new connection (LG_RECONNECT_PAUSE_MS apart while it is
 * refused), the unfinished message written again from its start.
 */
static void
pub_lost(struct pub *p, const char *what)
{
	int j = p->nends;

	if (!p->o->reconnect)
		pub_fail(p, what);
	for (;;) {
		close(p->fd);
		p->inlen = 0;	/* the old connection's unread replies */
		if (pub_connect(p) == NULL)
			break;
		if (p->ctl->pub_stop >= 2)
			pub_fail(p, what);
		usleep(LG_RECONNECT_PAUSE_MS * 1000);
	}
	p->ctl->pub_reconnects++;
	while (j > 0 && p->ends[j - 1] > p->ooff)
		j--;
	p->ooff = j > 0 ? p->ends[j - 1] : 0;
}

/* Drop what the server sent (replies), answering NATS PINGs; no blocking. */
static void
pub_drain(struct pub *p)
{
	struct wire_ev ev;
	ssize_t r;
	long k;

	while ((r = read(p->fd, p->in + p->inlen, sizeof(p->in) - p->inlen)) > 0) {
		size_t off = 0;

		p->inlen += (size_t)r;
		while ((k = wire_parse(p->o->proto, p->in + off, p->inlen - off,
		    &ev)) > 0) {
			off += (size_t)k;
			if (ev.type == EV_ERR && p->ctl->pub_error[0] == '\0')
				snprintf(p->ctl->pub_error,
				    sizeof(p->ctl->pub_error), "%.*s",
				    (int)(ev.tlen < 100 ? ev.tlen : 100), ev.text);
			if (ev.type == EV_PING && p->olen + 8 < PUB_BUF)
				p->olen += wire_pong(p->o->proto, p->out + p->olen, 8);
		}
		if (k < 0)
			off = p->inlen;		/* resynchronise: drop it all */
		memmove(p->in, p->in + off, p->inlen - off);
		p->inlen -= off;
	}
	if (r == 0 || (r == -1 && errno != EAGAIN))
		pub_lost(p, "server closed the publisher");
}

/* Write out what is buffered, waiting (and draining replies) as needed. */
static void
pub_flush(struct pub *p, int all)
{
	struct pollfd pfd;
	ssize_t r;

	while (p->ooff < p->olen) {
		r = write(p->fd, p->out + p->ooff, p->olen - p->ooff);
		if (r > 0) {
			p->ooff += (size_t)r;
			continue;
		}
		if (r == -1 && errno != EAGAIN) {
			pub_lost(p, "write");
			continue;
		}
		pfd.fd = p->fd;
		pfd.events = POLLOUT | POLLIN;
		poll(&pfd, 1, 10);
		pub_drain(p);
		if (!all || p->ctl->pub_stop >= 2)
			break;
	}
	if (p->ooff == p->olen)
		p->olen = p->ooff = p->nends = 0;
}

/* Messages in out not yet written in full. */
static uint64_t
pub_unwritten(const struct pub *p)
{
	int j = p->nends;

	while (j > 0 && p->ends[j - 1] > p->ooff)
		j--;
	return (uint64_t)(p->nends - j);
}

/*
 * Connect and say hello as the protocol wants; the socket ends
 * non-blocking.  NULL, or what went wrong (p->fd is then to be closed).
 */
static const char *
pub_connect(struct pub *p)
{
	const char *why = NULL;
	char buf[256];
	size_t n;
	int fl, one = 1;

	if ((p->fd = tcp_connect_nb(p->o->host, p->o->pub_port, 0)) == -1)
		return "connect";
	/* Nagle would hold a paced write back until the server ACKs the one
	 * before: a server that does not answer a publication (herald's PUB,
	 * NATS, MQTT QoS 0) may send that ACK delayed, up to 40 ms later,
	 * and every message due meanwhile waits; Redis's reply carries it
	 * at once.  --pub-nagle measures that. */
	if (!p->o->pub_nagle)
		setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	if ((p->o->proto == PROTO_HERALD || p->o->proto == PROTO_NATS) &&
	    (why = pub_expect(p)) != NULL)	/* HELLO, INFO */
		return why;
	n = wire_connect(p->o->proto, buf, sizeof(buf), 0xfffffffu);
	if (n > 0 && write(p->fd, buf, n) != (ssize_t)n)
		return "write";
	if (p->o->proto == PROTO_MQTT && (why = pub_expect(p)) != NULL)
		return why;		/* CONNACK */
	fl = fcntl(p->fd, F_GETFL);
	fcntl(p->fd, F_SETFL, fl | O_NONBLOCK);
	return NULL;
}

/* Sleep until the absolute monotonic time t. */
static void
sleep_until(uint64_t t)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(t / 1000000000u);
	ts.tv_nsec = (long)(t % 1000000000u);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/*
 * Publish rate msg/s for duration seconds (0: until pub_stop), starting at
 * ctl->pub_go_ns; then keep the connection, draining it, until pub_stop is 2.
 */
void
pub_child_main(const struct lg_opts *o, struct lg_ctl *ctl, double rate,
    double duration)
{
	static char topics[1024][32];
	char payload[LG_MAX_PAYLOAD], topic[32];
	const char *why;
	uint64_t i = 0, total, t0, due, now;
	size_t room = (size_t)o->payload + 600;
	struct pub p;

	memset(&p, 0, sizeof(p));
	p.o = o;
	p.ctl = ctl;
	if ((p.out = malloc(PUB_BUF)) == NULL)
		_exit(2);
	if ((why = pub_connect(&p)) != NULL)
		pub_fail(&p, why);
	for (i = 0; i < 1024 && i < (uint64_t)o->topics; i++)
		wire_topic(o->proto, topics[i], sizeof(topics[i]), (int)i);
	ctl->pub_ready = 1;
	while ((t0 = ctl->pub_go_ns) == 0 && ctl->pub_stop == 0)
		usleep(1000);
	total = duration > 0 ? (uint64_t)(rate * duration + 0.5) : UINT64_MAX;
	for (i = 0; i < total && ctl->pub_stop == 0; ) {
		now = now_ns();
		due = t0 + (uint64_t)((double)i * 1e9 / rate);
		if (due > now && p.olen == 0) {
			sleep_until(due);
			continue;
		}
		if (due <= now && now - due > ctl->pub_late_max_ns)
			ctl->pub_late_max_ns = now - due;
		if (duration > 0 && now > t0 + (uint64_t)(duration * 1e9) +
		    PUB_GRACE_NS)
			break;			/* held back too long: give up */
		while (i < total && due <= now && p.olen + room < PUB_BUF &&
		    p.nends < PUB_MAX_BATCH) {
			int t = (int)(i % (uint64_t)o->topics);
			const char *tn = t < 1024 ? topics[t] : topic;

			if (t >= 1024)
				wire_topic(o->proto, topic, sizeof(topic), t);
			wire_payload(payload, (size_t)o->payload, due);
			p.olen += wire_publish(o->proto, p.out + p.olen,
			    PUB_BUF - p.olen, tn, payload, (size_t)o->payload);
			p.ends[p.nends++] = p.olen;
			i++;
			due = t0 + (uint64_t)((double)i * 1e9 / rate);
		}
		pub_flush(&p, 0);
		pub_drain(&p);
		ctl->published = i - pub_unwritten(&p);
	}
	if (duration > 0 && now_ns() > t0 + (uint64_t)(duration * 1e9) +
	    PUB_GRACE_NS)
		pub_flush(&p, 0);	/* one last try, then count what went */
	else
		pub_flush(&p, 1);
	ctl->published = i - pub_unwritten(&p);
	ctl->pub_done = 1;
	while (ctl->pub_stop < 2) {
		usleep(10000);
		pub_drain(&p);
	}
	_exit(0);
}
