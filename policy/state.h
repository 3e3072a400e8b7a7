/* state.h: the engine's learned state and pins as plain records, for snapshots. The
 * daemon (spoa/snap.c) encodes them into a file; policy/ never sees a file, a clock or
 * a format. Export: capture on the control thread (a copy of what it owns, plus a hold
 * on the view and the pin tables, whose pins are read later, lock-free, from any
 * thread). Import: restore by NAME into the view in force, dropping learned entries for
 * backends, accounts, endpoints and classes that no longer exist; pins keep their
 * account (policy.h, pol_engine_pin_restore). */
#ifndef STATE_H
#define STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "srate-t.h"

struct pol_engine;
struct pol_state; /* a capture: see pol_state_capture */

/* One pin. Names belong to the engine (export) or to the caller (import). */
struct pol_pin_rec {
	uint8_t kind;           /* enum pol_pin_table */
	const char *backend;    /* the backend's name */
	const char *account;    /* its account: a pin whose backend vanished keeps its account */
	uint64_t key;           /* the table's key hash */
	uint32_t age_s;         /* seconds since the pin was written (ttl - time left) */
};

/* Learned-state records. The value is a kind's flat, pointer-free struct (engine-learn.c)
 * with its times on the engine clock of the capture; it is checked on import (the
 * modules' *_verify, finite numbers), so a forged one is dropped, never trusted. */
enum pol_rec_kind {
	POL_REC_BACKEND = 1,    /* name: backend. breaker, anomaly charts, latency */
	POL_REC_CELL,           /* name: account, name2: endpoint ("" = the account's own
	                         * budget). adaptive budget and the GCRA cell's debt */
	POL_REC_FORECAST,       /* name: account, name2: class. forecaster (seasonal slots
	                         * included) and shed share */
	POL_REC_TOTALS,         /* cumulative counts (breaker openings, cuts, sheds, ...) */
	POL_REC_KINDS
};

#define POL_REC_NAME 64

struct pol_rec {
	uint8_t kind;
	char name[POL_REC_NAME], name2[POL_REC_NAME];
	uint32_t len;           /* bytes of val */
	const void *val;
};

/* Control thread: copies the learned state of the view in force (O(state), no pin is
 * read) and holds the view, so its pins stay readable until pol_state_free. NULL when
 * out of memory. now_us: the engine clock. */
struct pol_state *pol_state_capture(struct pol_engine *e, uint64_t now_us);
/* Any thread: releases the hold (the control thread frees the view at a later tick).
 * Accepts NULL. */
void pol_state_free(struct pol_state *st);

uint64_t pol_state_now_us(const struct pol_state *st);    /* the capture's engine time */
uint64_t pol_state_fingerprint(const struct pol_state *st);

/* The learned records and posterior entries of a capture (owned by it). */
size_t pol_state_nrecs(const struct pol_state *st);
const struct pol_rec *pol_state_rec(const struct pol_state *st, size_t i);
size_t pol_state_nsrt(const struct pol_state *st);
const struct srt_entry *pol_state_srt(const struct pol_state *st, size_t i);

/* Any thread: calls cb for every live pin of the captured view, lock-free (a pin
 * written during the scan may be missed). Stops when cb returns non-zero and returns
 * that value, else 0. */
typedef int (*pol_pin_cb)(void *arg, const struct pol_pin_rec *r);
int pol_state_foreach_pin(const struct pol_state *st, pol_pin_cb cb, void *arg);

/* A hash of what learned state depends on: the learning modules' settings and the
 * layout of their values. A snapshot of another fingerprint loads its pins only. */
uint64_t pol_state_engine_fingerprint(struct pol_engine *e);

/* ---- import (control thread, before the first decision or between ticks) ----------- */
struct pol_state_import {
	struct pol_engine *e;
	uint64_t now_us;        /* the engine clock now */
	int64_t shift_us;       /* saved engine time t is now t + shift_us */
	uint32_t age_extra_s;   /* seconds between the capture and now (downtime) */
	bool learned;           /* false: learned records are dropped (fingerprint differs) */
	uint64_t pins;          /* restored; of those: */
	uint64_t pins_remapped; /*   to another backend of its account */
	uint64_t pins_gone;     /*   on an account gone from the policy (refused: pin:gone) */
	uint64_t pins_dropped;  /* not restored: expired, malformed, or no room */
	uint64_t recs, recs_dropped, srt, srt_dropped;
};

/* saved_now_us: the capture's engine time; elapsed_us: wall-clock time since the
 * capture (0 when unknown or negative); learned: whether learned state may load. */
void pol_state_import_begin(struct pol_state_import *im, struct pol_engine *e, uint64_t now_us,
                            uint64_t saved_now_us, uint64_t elapsed_us, bool learned);
/* Each returns 0 when restored, 1 when dropped (vanished name, expired, invalid, or
 * learned state refused). */
int pol_state_restore_pin(struct pol_state_import *im, const struct pol_pin_rec *r);
int pol_state_restore_rec(struct pol_state_import *im, const struct pol_rec *r);
int pol_state_restore_srt(struct pol_state_import *im, const struct srt_entry *e);
/* Publishes what was restored (health, budgets, posteriors): one engine tick at now_us. */
void pol_state_import_end(struct pol_state_import *im);

#endif /* STATE_H */
