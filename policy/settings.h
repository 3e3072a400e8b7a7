/* settings.h: every policy setting (name, type, range, default, one line of doc) is
 * declared once, in one table per section (settings.c), the way Redis declares its
 * configuration (`standardConfig configs[]`). The loader reads through the tables, the
 * defaults come from them, and `payspoa --settings` prints the reference that
 * conf/README.md carries (a unit test keeps the two equal).
 * Pure: no I/O, no globals but the constant tables. */
#ifndef SETTINGS_H
#define SETTINGS_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>

#include "cfg.h"

/* How a value in the file becomes a field of the struct (`off` bytes into the base). */
enum pol_set_kind {
	PS_INT,     /* integer → int */
	PS_U32,     /* integer → uint32_t */
	PS_I64,     /* integer → int64_t */
	PS_POW2,    /* integer → uint32_t, rounded up to a power of two (table sizes) */
	PS_NUM,     /* number → double */
	PS_BOOL,    /* true/false → bool */
	PS_SEC_US,  /* number of seconds → uint64_t microseconds */
	PS_MS_US,   /* integer of milliseconds → uint64_t microseconds */
	PS_SHARE,   /* number 0..1 → uint32_t permille */
	PS_STR,     /* string → char[max] at `off` (non-empty, NUL-terminated) */
	PS_GROUP,   /* a nested group, read with `sub` at `off` */
	PS_CUSTOM,  /* read by `parse` (lists, names, enums, derived fields) */
};

struct pol_setting;
struct pol_section;

/* A custom setting's reader: g is the section's group (NULL when the section is absent:
 * apply nothing, or derive from defaults); base as for the table. 0 or -1. */
typedef int (*pol_set_parse_fn)(struct cfg_ctx *c, const struct cfg_node *g, const struct pol_setting *s,
                                void *base);
/* Writes the value of a custom setting as the reference shows it. */
typedef void (*pol_set_show_fn)(const void *base, const struct pol_setting *s, char *buf, size_t size);

/* DEF_INIT as a default: the field keeps what the section's init put there (a module's
 * *_cfg_default, or a default that depends on where a shared table sits); the reference
 * reads every default back from a policy loaded without the section, so it shows these
 * too. */
#define DEF_INIT NAN

struct pol_setting {
	const char *name;
	enum pol_set_kind kind;
	size_t off;
	double min, max;           /* in the file's unit */
	double def;                /* in the file's unit; DEF_INIT: the section's init sets it */
	const char *doc;           /* one line: the reference's "meaning" column */
	const char *range;         /* the reference's range column when min..max says too little */
	const char *type;          /* the reference's type column for PS_CUSTOM */
	bool required;
	const struct pol_section *sub;  /* PS_GROUP */
	pol_set_parse_fn parse;    /* PS_CUSTOM; NULL: declared here, read by load.c itself */
	pol_set_show_fn show;      /* the default as the reference shows it (PS_CUSTOM; optional else) */
	int aux;                   /* PS_CUSTOM: the parser's own argument */
};

struct pol_section {
	const char *name;          /* the key in the file ("learning.unanswered" style for docs) */
	const char *key;           /* the member name in its parent group */
	const char *what;          /* names the group in errors ("unknown key 'x' in <what>") */
	const struct pol_setting *settings;
	int nsettings;
	void (*init)(void *base);  /* defaults not declared in the table (module defaults) */
	bool element;              /* a list element (a backend, a class): base is the element */
};

/* Singleton sections and list elements, in the order of conf/README.md. */
extern const struct pol_section pol_sec_agent, pol_sec_pinning, pol_sec_throttle, pol_sec_scoring,
	pol_sec_breaker, pol_sec_learning, pol_sec_anomaly, pol_sec_forecast, pol_sec_adaptive,
	pol_sec_outcomes, pol_sec_fleet, pol_sec_fee, pol_sec_backend, pol_sec_class, pol_sec_webhooks;
extern const struct pol_section *const pol_sections[];
extern const int pol_nsections;

/* Member sec->key of parent (or parent itself when sec->element): checks it is a group
 * of known keys, applies the defaults to base, then every setting present. A NULL or
 * absent group gives the defaults. 0 or -1 (ctx->err filled). */
int pol_section_read(struct cfg_ctx *c, const struct cfg_node *parent, const struct pol_section *sec, void *base);

/* Applies sec's defaults only. */
void pol_section_defaults(const struct pol_section *sec, void *base);

/* The markdown reference of every section (snprintf contract: returns the length it
 * needs, writes at most size bytes, NUL-terminated when size > 0). */
size_t pol_settings_reference(char *buf, size_t size);
/* One section's table, between its <!-- settings:NAME --> markers. */
size_t pol_section_reference(const struct pol_section *sec, char *buf, size_t size);

#endif /* SETTINGS_H */
