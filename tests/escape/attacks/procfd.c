/* procfd FD NAME: waits for the next process to appear in this PID namespace (the one that
 * `exec` forks to become its command), stops it with SIGSTOP before it can exec, and reaches
 * through /proc/PID/fd/FD, a directory it holds, for NAME: a descriptor of the host's that the
 * caller of `exec` left open. Reports the first failure: EACCES when the process is not
 * dumpable (no ptrace access to its fds: tried on its fd 0 first), ENOENT when it holds no
 * FD; "missed" when the
 * process had already exec'd its command when it was caught. Then lets it go on, waits for it
 * to end, and exits. Run as a container's PID 1; it writes /tmp/procfd-ready once it watches. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "report.h"

static long seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec;
}

/* The one-letter state and the name of process `pid`, from /proc/PID/stat. */
static int stat_of(int pid, char *state, char *comm, size_t size)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
    if (!open_paren || !close_paren || close_paren[1] != ' ')
        return -1;
    snprintf(comm, size, "%.*s", (int)(close_paren - open_paren - 1), open_paren + 1);
    *state = close_paren[2];
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return usage("FD NAME");
    char buf[32] = {0};
    int fd = open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0)
        return report(-1);
    close(fd);
    int target = atoi(buf) + 1;
    int ready = open("/tmp/procfd-ready", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (ready < 0)
        return report(-1);
    close(ready);

    long deadline = seconds() + 60;
    unsigned long tries = 0;
    /* A short sleep between tries, not a spin: a process that mostly sleeps is run at once
     * when it wakes, where a busy one waits behind the fresh processes of `exec`. */
    while (kill(target, SIGSTOP) < 0) {
        if (errno != ESRCH)
            return report(-1);
        usleep(20);
        if (++tries % 1024 == 0 && seconds() > deadline) {
            puts("timeout");
            return 3;
        }
    }
    char state = 0, comm[64] = "";
    while (stat_of(target, &state, comm, sizeof comm) == 0 && state != 'T' && state != 't')
        ;
    int result;
    if (strcmp(comm, "mini-container")) {
        printf("missed (%s)\n", comm);
        result = 3;
    } else {
        /* Its stdin first: any fd it holds answers EACCES when it is not dumpable. */
        char path[64], link[256];
        snprintf(path, sizeof path, "/proc/%d/fd/0", target);
        long ret = readlink(path, link, sizeof link);
        if (ret >= 0) {
            snprintf(path, sizeof path, "/proc/%d/fd/%s", target, argv[1]);
            int held = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            ret = held < 0 ? -1 : openat(held, argv[2], O_RDONLY | O_CLOEXEC);
        }
        result = report(ret);
    }
    kill(target, SIGCONT);
    while (kill(target, 0) == 0 && seconds() <= deadline)
        usleep(1000);
    return result;
}
