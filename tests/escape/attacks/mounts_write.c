/* mounts_write PATH [DATA]: opens PATH for writing (a /proc/sys, /sys or cgroup file) and,
 * when DATA is given, writes it in one write(2); reports whether the kernel let it. Tests
 * pass the file's current value as DATA, so that nothing changes even when the write goes
 * through. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include "report.h"

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3)
        return usage("PATH [DATA]");
    int fd = open(argv[1], O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || argc == 2)
        return report(fd);
    return report(write(fd, argv[2], strlen(argv[2])));
}
