/* cfg.h: typed, checked access to a libconfig file, for the policy loader and the
 * simulator's scenario reader. cfg.c is the only file of the project that includes
 * <libconfig.h>; this header does not, so its users cannot reach libconfig directly.
 *
 * Contracts, written once:
 * - Every error is "file:line: message" written into the caller's buffer (ctx->err),
 *   the file being the one the setting came from (an @include names the included file).
 *   Functions that fail return -1 and leave their output untouched.
 * - Optional members that are absent leave the output untouched (the caller's default
 *   stands): scalar readers (cfg_int, cfg_num, cfg_bool) then return 0, so they chain
 *   with ||; the others return CFG_MISSING (> 0), which callers test for. A NULL group counts as "every member
 *   absent", so a section that is not in the file reads as all defaults.
 * - Strings are C strings as libconfig stores them (its parser stops at NUL): a copy is
 *   always NUL-terminated and never longer than the caller's buffer.
 * - Nodes are owned by their cfg_file and live until cfg_close. */
#ifndef CFG_H
#define CFG_H

#include <stdbool.h>
#include <stddef.h>

struct cfg_file; /* a parsed file */
struct cfg_node; /* one setting of it: a group, a list, an array or a scalar */

/* Error wording. The simulator's messages predate this module and scripts grep them
 * (tests/integ/test-sim.sh); the policy's are checked by the unit tests. */
enum cfg_words { CFG_WORDS_POLICY = 0, CFG_WORDS_SCENARIO };

struct cfg_ctx {
	const char *file;      /* named in errors about settings without a source file */
	char *err;
	size_t errlen;
	enum cfg_words words;
};

enum cfg_type { CFG_NONE = 0, CFG_GROUP, CFG_INT, CFG_FLOAT, CFG_STRING, CFG_BOOL, CFG_ARRAY, CFG_LIST };

#define CFG_MISSING 1

/* cfg_str flags */
#define CFG_REQUIRED  1u /* absent: "missing 'key'" */
#define CFG_EMPTY_OK  2u /* "" is a value (else "'key' must not be empty") */
#define CFG_STAR_ANY  4u /* "*" is stored as "" (the simulator's "any") */

/* Parse a file; @include paths resolve against incdir. NULL: err holds file:line.
 * Before libconfig sees them, the file and every file it includes are checked (cfg.c,
 * the pre-scan): regular files only, opened without blocking, 16 MiB and 64 files at
 * most, no cycle, no integer libconfig would wrap, no NUL in a string or the file. */
struct cfg_file *cfg_read_file(const char *path, const char *incdir, char *err, size_t errlen);
/* Parse text; `name` stands for the file in errors. NULL: err holds name:line. */
struct cfg_file *cfg_read_string(const char *text, const char *name, char *err, size_t errlen);
/* The pre-scan alone, on len bytes of text (NUL bytes included; @include refused):
 * 0, or -1 with name:line in err. */
int cfg_check_text(const char *text, size_t len, const char *name, char *err, size_t errlen);
void cfg_close(struct cfg_file *f); /* accepts NULL */
const struct cfg_node *cfg_root(const struct cfg_file *f);

/* Writes "file:line: message" for node n (NULL: ctx->file, line 0); returns -1. */
__attribute__((format(printf, 3, 4)))
int cfg_fail(struct cfg_ctx *c, const struct cfg_node *n, const char *fmt, ...);

/* ---- plain accessors (NULL-safe: a NULL node has no members and no elements) ---- */
const struct cfg_node *cfg_get(const struct cfg_node *g, const char *key);
const struct cfg_node *cfg_at(const struct cfg_node *agg, int i);
int cfg_count(const struct cfg_node *agg);
const char *cfg_name(const struct cfg_node *n);      /* member name, NULL for elements */
unsigned cfg_line(const struct cfg_node *n);
enum cfg_type cfg_type(const struct cfg_node *n);
bool cfg_is_group(const struct cfg_node *n);
bool cfg_is_seq(const struct cfg_node *n);          /* an array or a list */
const char *cfg_string(const struct cfg_node *n);   /* NULL unless a string */
const char *cfg_elem_str(const struct cfg_node *agg, int i);

/* ---- checked members ------------------------------------------------------------- */

/* Every member of g is named in keys (NULL-terminated); `what` names g in errors.
 * Policy wording also requires g to be a group. */
int cfg_keys(struct cfg_ctx *c, const struct cfg_node *g, const char *what, const char *const keys[]);
/* Member key of g of `type` (INT accepts 64-bit integers, FLOAT accepts integers, LIST
 * accepts arrays). Returns 0 with *out, CFG_MISSING (optional and absent), or -1. */
int cfg_member(struct cfg_ctx *c, const struct cfg_node *g, const char *key, enum cfg_type type,
               bool required, const struct cfg_node **out);
/* Scalars: 0 (read, or absent and optional) or -1. */
int cfg_int(struct cfg_ctx *c, const struct cfg_node *g, const char *key, bool required,
            long long min, long long max, long long *out);
int cfg_num(struct cfg_ctx *c, const struct cfg_node *g, const char *key, bool required,
            double min, double max, double *out);
int cfg_bool(struct cfg_ctx *c, const struct cfg_node *g, const char *key, bool *out);
/* String member copied into buf (flags CFG_*). 0, CFG_MISSING or -1. */
int cfg_str(struct cfg_ctx *c, const struct cfg_node *g, const char *key, unsigned flags,
            char *buf, size_t size);
/* Copies v (the value of `key`, found at n) into buf: non-empty, at most size-1 bytes. */
int cfg_copy(struct cfg_ctx *c, const struct cfg_node *n, const char *key, const char *v,
             char *buf, size_t size);
/* List or array of at most max strings / groups. 0 with *out, CFG_MISSING (*out NULL)
 * or -1; a required one must not be empty. */
int cfg_strlist(struct cfg_ctx *c, const struct cfg_node *g, const char *key, bool required,
                int max, const struct cfg_node **out);
int cfg_grouplist(struct cfg_ctx *c, const struct cfg_node *g, const char *key, bool required,
                  int max, const struct cfg_node **out);
/* Any list or array (the simulator's lists: it checks elements itself). */
int cfg_seq(struct cfg_ctx *c, const struct cfg_node *g, const char *key, bool required,
            const struct cfg_node **out);
/* Element i of a list/array as a number >= 0 (the simulator's multipliers). */
int cfg_elem_num(struct cfg_ctx *c, const struct cfg_node *agg, int i, double *out);

#endif /* CFG_H */
