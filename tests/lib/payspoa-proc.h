/* payspoa-proc.h: the one harness that starts, watches and stops a payspoa daemon from
 * a test (proto layer: test-daemon, test-conformance). Every wait has a deadline; a
 * case that fails or is killed by its time limit takes the daemon along
 * (PR_SET_PDEATHSIG, and pp_cleanup registered with atexit). One daemon per case: the
 * harness remembers the last one started for pp_cleanup. */
#ifndef PAYSPOA_PROC_H
#define PAYSPOA_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "spop-client.h"

struct pp_daemon {
	pid_t pid;
	bool stopped;        /* reaped: pid is no longer ours to signal */
	char addr[128];      /* where it listens: host:port, [v6]:port or unix:/path */
	char log[96];        /* its stdout+stderr, removed by pp_cleanup */
};

/* The daemon binary ($PAYSPOA_BIN, else ./payspoa) and the default policy
 * ($PAYSPOA_CONF, else a copy of conf/ made once per process, removed at exit, whose
 * outcome socket is in that copy's folder). */
const char *pp_bin(void);
const char *pp_conf(void);

/* A copy of conf/ in a fresh folder (removed at exit) whose payspoa.conf has each from[i]
 * replaced by to[i], first occurrence (the case fails when one is absent: a test that
 * edits nothing proves nothing). Each call starts a new copy. Returns the copy's
 * payspoa.conf (static storage; its folder is the same for the whole process). */
const char *pp_conf_variant(size_t n, const char *const from[], const char *const to[]);

/* A loopback TCP port free at the time of the call. */
int pp_free_port(void);

/* Start `payspoa -f conf -l listen -w workers` (conf NULL: pp_conf(); listen NULL: a
 * free loopback port) with at most `nofile` descriptors (0: inherited), and wait until
 * it accepts (20 s at most, else the case fails). */
void pp_start(struct pp_daemon *d, const char *conf, const char *listen, int workers,
              int nofile);

/* Is the daemon still running? */
bool pp_alive(struct pp_daemon *d);

/* Wait for the exit of a daemon already told to stop. Returns the wait status, or -1
 * past timeout_ms (then it is killed). */
int pp_wait(struct pp_daemon *d, int timeout_ms);

/* Send sig and wait for the exit: pp_wait's result. */
int pp_stop(struct pp_daemon *d, int sig, int timeout_ms);

/* The daemon's resident set in kB (from /proc), or -1. */
int pp_rss_kb(const struct pp_daemon *d);

/* At exit of a case (failed ones included; a case may also call it itself): kill the
 * daemon if it still runs, show the error lines of its log on stderr (they land in the
 * test's log), remove the log and a unix socket it listened on. Idempotent. */
void pp_cleanup(void);

/* How many lines of the daemon's log contain `needle`? */
int pp_log_count(const struct pp_daemon *d, const char *needle);

bool pp_log_has(const struct pp_daemon *d, const char *needle);

/* Wait up to timeout_ms for the log to contain needle. */
bool pp_log_wait(const struct pp_daemon *d, const char *needle, int timeout_ms);

/* Run `payspoa ARGS...` (NULL-terminated) to completion (10 s at most); its
 * stdout+stderr go into out. Returns the exit code, or -1 if it did not exit normally. */
int pp_run(char *out, size_t outlen, ...);

/* HELLO on a fresh connection; returns the connection (caller frees with pp_close) or
 * fails the case. A connection refused at once (closed: the daemon's slots still held
 * by connections it has not yet seen close) is tried again for up to 2 s; silence is a
 * failure. */
struct sc_conn *pp_hello(const char *addr);

void pp_close(struct sc_conn *c);

/* One pay-request round trip; *a receives the ACK's variables. */
void pp_decide(struct sc_conn *c, const struct sc_payreq *r, uint64_t sid,
               struct sc_ack *a);

#endif /* PAYSPOA_PROC_H */
