/* packet: a raw AF_PACKET socket (CAP_NET_RAW, which Docker grants), the way to read every
 * frame of an interface. Prints "ok" (or the errno's name of socket()), then the name of each
 * interface the socket can be bound to, one a line: the interfaces this container could sniff.
 * Nothing is sent. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "report.h"

int main(void)
{
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (report(fd) != 0)
        return 1;
    struct if_nameindex *interfaces = if_nameindex();
    if (!interfaces)
        return report(-1);
    for (struct if_nameindex *i = interfaces; i->if_index; i++) {
        struct sockaddr_ll address;
        memset(&address, 0, sizeof address);
        address.sll_family = AF_PACKET;
        address.sll_protocol = htons(ETH_P_ALL);
        address.sll_ifindex = i->if_index;
        if (bind(fd, (struct sockaddr *)&address, sizeof address) == 0)
            puts(i->if_name);
    }
    return 0;
}
