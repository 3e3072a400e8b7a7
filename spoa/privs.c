/* privs.c: drops root for agent.user / agent.group once the sockets are bound, before
 * any thread exists (so every thread runs with the dropped credentials). Boot only. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "privs.h"

int priv_drop(const char *user, const char *group, char *err, size_t errlen)
{
	struct passwd *pw;
	struct group *gr;
	uid_t uid;
	gid_t gid;

	if (!user) {
		if (group) {
			snprintf(err, errlen, "agent.group '%s' needs agent.user", group);
			return -1;
		}
		return 0;
	}
	errno = 0;
	pw = getpwnam(user);
	if (!pw) {
		snprintf(err, errlen, "agent.user '%s': %s", user, errno ? strerror(errno) : "no such user");
		return -1;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (group) {
		errno = 0;
		gr = getgrnam(group);
		if (!gr) {
			snprintf(err, errlen, "agent.group '%s': %s", group, errno ? strerror(errno) : "no such group");
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (getuid() == uid && geteuid() == uid && getgid() == gid && getegid() == gid)
		return 0; /* already that user (started by systemd with User=): nothing to drop */
	if (geteuid() != 0) {
		snprintf(err, errlen, "agent.user '%s': only root can switch users (running as uid %u)", user,
		         (unsigned)geteuid());
		return -1;
	}
	/* groups first: once the uid is not 0, they can no longer be changed */
	if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
		snprintf(err, errlen, "dropping privileges to %s: %s", user, strerror(errno));
		return -1;
	}
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		snprintf(err, errlen, "dropping privileges to %s: root could be regained", user);
		return -1;
	}
	return 0;
}
