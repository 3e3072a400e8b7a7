/* fleetmsg.h: the fleet's texts in Redis (fleet.c): a pin's key name, its value and a
 * message on the pins channel; parsers and formatters, no I/O, no allocation.
 *   key      <prefix>:pin:<table digit>:<16 lower-case hex digits of the engine's hash>
 *   value    <backend> <account>
 *   message  <node> <table digit> <16 hex digits> <backend> <account> <wall-clock µs>
 * Names hold no space and no control character (the loader's names never do). */
#ifndef FLEETMSG_H
#define FLEETMSG_H

#include <stddef.h>
#include <stdint.h>

#define FLEET_NAME_MAX 64u  /* a backend or account name with its NUL (POL_NAME_MAX + 1) */
#define FLEET_NODE_MAX 128u /* a node name with its NUL */

struct fleet_msg {
	char node[FLEET_NODE_MAX];
	unsigned table;
	uint64_t key;
	char backend[FLEET_NAME_MAX], account[FLEET_NAME_MAX];
	uint64_t wall_us;       /* when the pin was made, on its node's wall clock */
};

/* Parsers: 0, or -1 when the text is not exactly that form (nothing to trust then; the
 * outputs may be partly written). len bytes of text, not NUL-terminated. */
int fleet_value_parse(const char *v, size_t len, char *backend, char *account);
int fleet_key_parse(const char *prefix, const char *k, size_t len, unsigned *table, uint64_t *key);
int fleet_msg_parse(const char *m, size_t len, struct fleet_msg *out);

/* Formatters: snprintf's return (the length it needed); the caller checks it fit. */
int fleet_key_format(char *buf, size_t size, const char *prefix, unsigned table, uint64_t key);
int fleet_value_format(char *buf, size_t size, const char *backend, const char *account);
int fleet_msg_format(char *buf, size_t size, const struct fleet_msg *m);

#endif /* FLEETMSG_H */
