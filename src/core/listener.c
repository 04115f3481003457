#include "core/platform.h"
#include "core/listener.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

int listener_open(const char *host, int port, int *bound_port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	socklen_t sl = sizeof(sa);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 1024) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	if (bound_port)
		*bound_port = ntohs(sa.sin_port);
	return fd;
}

int listener_accept(int lfd, char *peer, size_t peercap, char ip[INET_ADDRSTRLEN])
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = accept4(lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return -1;
	snprintf(ip, INET_ADDRSTRLEN, "?");
	inet_ntop(AF_INET, &sa.sin_addr, ip, INET_ADDRSTRLEN);
	snprintf(peer, peercap, "%s:%d", ip, ntohs(sa.sin_port));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}
