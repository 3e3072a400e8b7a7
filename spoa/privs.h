/* privs.h: dropping root after the listeners are bound (agent.user, agent.group). */
#ifndef PRIVS_H
#define PRIVS_H

#include <stddef.h>

/* Becomes user (and group, default: the user's own group), supplementary groups cleared,
 * then checks that root cannot be regained. user NULL: nothing to do (group alone is an
 * error). Call it before any thread starts. Returns 0, or -1 with err filled: the caller
 * must not run on (a daemon that meant to drop root must never serve as root). */
int priv_drop(const char *user, const char *group, char *err, size_t errlen);

#endif /* PRIVS_H */
