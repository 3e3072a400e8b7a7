/* merge.h: learning across nodes (issue 10): the outcome counts a node learned since its
 * last publication, per backend name x segment, as a delta table; its text for the
 * fleet's channel and the parser of the other nodes' texts (fuzzed: tests/fuzz/fuzz-merge.c);
 * which node's deltas were seen (own echo ignored, a replayed sequence ignored).
 * Pure: no allocation after init (caller memory), no lock, no I/O. */
#ifndef MERGE_H
#define MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MRG_NAME_MAX 64   /* a backend name, its NUL included */
#define MRG_NODE_MAX 128  /* a node name, its NUL included */
#define MRG_PEERS    64   /* other nodes remembered for their sequence numbers */

struct mrg_key {          /* a backend (by name: ids differ between nodes) x segment codes */
	char backend[MRG_NAME_MAX];
	uint32_t cur, cty, brand, fund;  /* srt_code() of the fields (0 unknown): same on every node */
};

struct mrg_cell {
	struct mrg_key k;
	uint32_t s, f;        /* successes and failures counted as the posteriors count them */
	bool used;
};

struct mrg_delta {
	struct mrg_cell *cell;
	uint32_t cap, n;      /* cap a power of two; n cells used (at most 3/4 of cap) */
	uint64_t dropped;     /* outcomes not kept: the table was full */
};

/* Uses cap cells of mem (cap a power of two >= 4). 0, or -1 on a bad cap. */
int mrg_init(struct mrg_delta *d, struct mrg_cell *mem, uint32_t cap);
void mrg_reset(struct mrg_delta *d);
/* Adds s successes and f failures to the key's cell. 0, or -1 (name too long: not kept;
 * table full: counted in dropped). */
int mrg_add(struct mrg_delta *d, const struct mrg_key *k, uint32_t s, uint32_t f);
/* The cell of k, or NULL. */
const struct mrg_cell *mrg_find(const struct mrg_delta *d, const struct mrg_key *k);

/* The channel's texts, one line each:
 *   L <node> <seq> <n>[;<backend> <cur hex> <cty hex> <brand hex> <fund hex> <s> <f>]...
 *   B <node> <seq> <backend>         (a breaker opened on <node>)
 * Names are 1-63 (node 1-127) printable bytes without blank or ';'. */
enum mrg_kind { MRG_LEARN = 'L', MRG_BREAKER = 'B' };

struct mrg_msg {
	char kind;
	char node[MRG_NODE_MAX];
	uint64_t seq;
	char backend[MRG_NAME_MAX];  /* MRG_BREAKER */
};

/* The delta as one L line into out (NUL-terminated). Returns its length, or -1 when it
 * does not fit in len bytes (out unspecified) or a name is not sendable. */
int mrg_encode(const struct mrg_delta *d, const char *node, uint64_t seq, char *out, size_t len);
int mrg_encode_breaker(const char *node, uint64_t seq, const char *backend, char *out, size_t len);
/* Parses in[0, len) (no NUL needed). An L line's records are added into out (reset
 * first; may be NULL for a B line only). 0, or -1 when malformed or when out is full
 * (nothing of it is to be used then). */
int mrg_parse(const char *in, size_t len, struct mrg_msg *m, struct mrg_delta *out);

/* Which publications of other nodes were applied: a node's sequence numbers grow (one
 * counter per node process, for L and B alike). */
struct mrg_peers {
	struct {
		char node[MRG_NODE_MAX];
		uint64_t seq;
	} p[MRG_PEERS];
	unsigned n;
};
enum mrg_verdict { MRG_APPLY, MRG_OWN, MRG_SEEN, MRG_NO_ROOM };
/* MRG_APPLY (and remembers seq) when node is not self and seq is newer than the last
 * applied from node; MRG_OWN for this node's echo; MRG_SEEN for a replay or an older one;
 * MRG_NO_ROOM past MRG_PEERS nodes. A node restarted with a lower seq under the same name
 * is MRG_SEEN until it passes its old one: give every process its own name. */
enum mrg_verdict mrg_accept(struct mrg_peers *p, const char *self, const char *node, uint64_t seq);

#endif /* MERGE_H */
