/* listener.h - TCP listening sockets and accepting, shared by the Kafka
 * and HTTP servers (both accept on one loop and hand connections out). */
#ifndef SILT_LISTENER_H
#define SILT_LISTENER_H

#include "core/platform.h"

#include <netinet/in.h>

/* A non-blocking IPv4 listening socket on host:port (port 0 = ephemeral).
 * Returns the fd or -errno; *bound_port (may be NULL) gets the real port. */
int listener_open(const char *host, int port, int *bound_port);

/* Accepts one connection: a non-blocking, TCP_NODELAY fd, with the peer as
 * "ip:port" in peer and "ip" in ip. Returns the fd, or -1 with errno
 * (EAGAIN when nothing is waiting). */
int listener_accept(int lfd, char *peer, size_t peercap, char ip[INET_ADDRSTRLEN]);

#endif
