/* keyring MODE: the kernel keyring calls, which Docker's seccomp profile refuses to everyone
 * (keys are namespaced by user namespace only: a container sharing the host's would reach
 * root's keys). Each mode works on a new anonymous session keyring of this process, which
 * goes away with it.
 *   join-session   keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL): a new session keyring
 *   add-key        add_key a "user" key "mini-container-test" to it, then revoke the key
 *   request-key    request_key a key that does not exist, without upcall (ENOKEY once
 *                  reached) */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "report.h"

#define KEYCTL_JOIN_SESSION_KEYRING 1
#define KEYCTL_REVOKE 3
#define KEY_SPEC_SESSION_KEYRING -3

static long join_session(void)
{
    return syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL);
}

static long add_key(void)
{
    if (join_session() < 0)
        return -1;
    long key = syscall(SYS_add_key, "user", "mini-container-test", "x", 1,
                       KEY_SPEC_SESSION_KEYRING);
    if (key < 0)
        return -1;
    return syscall(SYS_keyctl, KEYCTL_REVOKE, key);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "join-session"))
        return report(join_session());
    if (!strcmp(mode, "add-key"))
        return report(add_key());
    if (!strcmp(mode, "request-key"))
        return report(syscall(SYS_request_key, "user", "mini-container-test-nosuch", NULL,
                              KEY_SPEC_SESSION_KEYRING));
    return usage("join-session | add-key | request-key");
}
