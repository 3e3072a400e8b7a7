/* outlog.c: the log outcome channel's reader thread (see outlog.h). It is the only
 * thread that uses its engine slot; it never blocks a decision worker and allocates
 * nothing after outlog_open. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "listen.h"
#include "logline.h"
#include "outlog.h"
#include "policy.h"
#include "stats.h"

/* Receive buffer asked for: 8 MiB holds ~30,000 lines of ~280 bytes, a second and more
 * of traffic at the rates this agent is built for, while the reader catches up. The
 * kernel caps it at net.core.rmem_max unless SO_RCVBUFFORCE is allowed (root). */
#define OUTLOG_RCVBUF (8 * 1024 * 1024)

/* How many datagrams the kernel queues on a unix socket before the sender gets EAGAIN
 * (net.unix.max_dgram_qlen; the kernel's default, 10, when it cannot be read). */
static unsigned outlog_kernel_qlen(void)
{
	FILE *f = fopen("/proc/sys/net/unix/max_dgram_qlen", "r");
	unsigned q = 10;

	if (f) {
		if (fscanf(f, "%u", &q) != 1 || q == 0)
			q = 10;
		fclose(f);
	}
	return q;
}

int outlog_open(struct outlog *r, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int rcv = OUTLOG_RCVBUF;

	memset(r, 0, sizeof(*r));
	r->fd = r->wake[0] = r->wake[1] = -1;
	r->opened = true;
	if (strlen(path) >= sizeof(sa.sun_path) || strlen(path) >= sizeof(r->path)) {
		snprintf(err, errlen, "outcome_socket %s: path too long", path);
		return -1;
	}
	snprintf(r->path, sizeof(r->path), "%s", path);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	r->bufs = malloc((size_t)OUTLOG_BATCH * (LOGLINE_MAX + 1));
	r->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (!r->bufs || r->fd < 0 || pipe2(r->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "outcome_socket %s: %s", path, strerror(errno));
		goto fail;
	}
	/* A socket left by an earlier run is replaced, a live one refused; any other file
	 * is not ours. */
	if (listen_unix_claim(path, SOCK_DGRAM, err, errlen) < 0)
		goto fail;
	if (bind(r->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "outcome_socket %s: %s", path, strerror(errno));
		goto fail;
	}
	r->bound = true;
	if (chmod(path, 0660) < 0) {
		snprintf(err, errlen, "outcome_socket %s: %s", path, strerror(errno));
		goto fail;
	}
	r->qlen = outlog_kernel_qlen();
	if (setsockopt(r->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
		setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	return 0;
fail:
	outlog_close(r);
	return -1;
}

/* What is queued on the socket, in batches: each line parsed and observed. Returns once
 * the socket is empty or after OUTLOG_DRAIN_BATCHES batches (a sender faster than this
 * reader must not keep it from seeing a stop), with the number of lines read. */
static unsigned outlog_drain(struct outlog *r)
{
	unsigned total = 0;

	struct mmsghdr m[OUTLOG_BATCH];
	struct iovec iov[OUTLOG_BATCH];
	struct pay_outcome out[OUTLOG_BATCH]; /* the batch's lines parsed (they point into bufs) */
	unsigned good;

	for (unsigned b = 0; b < OUTLOG_DRAIN_BATCHES; b++) {
		int n, i;
		uint64_t now;

		for (i = 0; i < OUTLOG_BATCH; i++) {
			iov[i].iov_base = r->bufs + (size_t)i * (LOGLINE_MAX + 1);
			iov[i].iov_len = LOGLINE_MAX + 1; /* one more: a longer line shows as truncated */
			memset(&m[i].msg_hdr, 0, sizeof(m[i].msg_hdr));
			m[i].msg_hdr.msg_iov = &iov[i];
			m[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(r->fd, m, OUTLOG_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return total; /* EAGAIN: empty; EINTR or any other error: the next poll retries */
		STAT_ADD(r->st.log_batches, 1);
		STAT_ADD(r->st.log_lines, (uint64_t)n);
		total += (unsigned)n;
		now = clock_mono_us();
		for (i = 0, good = 0; i < n; i++) {
			struct pay_outcome *o = &out[good];
			size_t len = m[i].msg_len;
			int rc;

			if ((m[i].msg_hdr.msg_flags & MSG_TRUNC) || len > LOGLINE_MAX) {
				STAT_ADD(r->st.log_truncated, 1);
				continue;
			}
			rc = logline_parse(iov[i].iov_base, len, o);
			if (rc == LOGLINE_TRUNCATED) {
				STAT_ADD(r->st.log_truncated, 1);
			} else if (rc < 0) {
				STAT_ADD(r->st.log_malformed, 1);
			} else {
				good++;
				if (o->latency_ms >= 0)
					hist_add(&r->upstream, (uint64_t)o->latency_ms * 1000, 1);
			}
		}
		/* the batch at once: its pin lookups' cache misses overlap (policy.h) */
		pol_observe_batch(r->engine, r->slot, out, good, now);
		/* the outcomes hold no pointer into the view past pol_observe_batch */
		pol_quiesce(r->engine, r->slot);
		if (n < OUTLOG_BATCH)
			return total;
	}
	return total;
}

/* The next nap (µs) after n lines came during a nap of nap_us: as long as lets the queue
 * fill to a quarter of what the kernel holds (r->qlen datagrams; HAProxy drops the
 * lines past that) at the rate just seen, at most OUTLOG_NAP_US. */
static unsigned outlog_next_nap(const struct outlog *r, unsigned nap_us, unsigned n)
{
	uint64_t quarter = r->qlen / 4 ? r->qlen / 4 : 1, next;

	next = n ? (uint64_t)nap_us * quarter / n : OUTLOG_NAP_US;
	return next > OUTLOG_NAP_US ? OUTLOG_NAP_US : (unsigned)next;
}

static void *outlog_main(void *arg)
{
	struct outlog *r = arg;
	struct pollfd pf[2] = { { r->fd, POLLIN, 0 }, { r->wake[0], POLLIN, 0 } };
	unsigned nap_us = OUTLOG_NAP_US, n;

	for (;;) {
		/* about to sleep: retired policy views need not wait for this thread */
		pol_worker_idle(r->engine, r->slot);
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			break;
		if (pf[1].revents)
			break;
		if (!pf[0].revents)
			continue;
		/* Lines come: read them in batches, napping between drains while they keep
		 * coming. Too fast for a nap worth having (a small queue, a high rate): each
		 * poll wakes for what is there. */
		for (n = outlog_drain(r); n > 0; n = outlog_drain(r)) {
			struct timespec nap;

			/* a stop asked while lines keep coming (HAProxy logs on after our
			 * workers stopped): seen here, not only in the outer poll */
			if (poll(&pf[1], 1, 0) > 0)
				goto stop;
			nap_us = outlog_next_nap(r, nap_us, n);
			if (nap_us < OUTLOG_NAP_MIN_US) {
				nap_us = OUTLOG_NAP_MIN_US;
				break;
			}
			nap = (struct timespec){ 0, nap_us * 1000L };
			pol_worker_idle(r->engine, r->slot);
			while (nanosleep(&nap, &nap) < 0 && errno == EINTR)
				;
		}
	}
stop:
	outlog_drain(r); /* what HAProxy sent before the stop */
	pol_worker_idle(r->engine, r->slot);
	return NULL;
}

int outlog_start(struct outlog *r, struct pol_engine *e, unsigned slot)
{
	r->engine = e;
	r->slot = slot;
	if (pthread_create(&r->thread, NULL, outlog_main, r) != 0)
		return -1;
	pthread_setname_np(r->thread, "payspoa-outlog");
	r->running = true;
	return 0;
}

void outlog_stop(struct outlog *r)
{
	if (!r->running)
		return;
	while (write(r->wake[1], "x", 1) < 0 && errno == EINTR)
		;
	pthread_join(r->thread, NULL);
	r->running = false;
}

void outlog_close(struct outlog *r)
{
	if (!r->opened)
		return;
	if (r->bound)
		unlink(r->path);
	if (r->fd >= 0)
		close(r->fd);
	if (r->wake[0] >= 0)
		close(r->wake[0]);
	if (r->wake[1] >= 0)
		close(r->wake[1]);
	free(r->bufs);
	r->fd = r->wake[0] = r->wake[1] = -1;
	r->bufs = NULL;
	r->opened = r->bound = false;
}
