/* The Kafka connection layer over loopback sockets: shutdown races that a
 * loaded machine hits by chance, made deterministic by holding a loop
 * still (a posted callback that waits) while the others move on. Client
 * sockets have 5 s timeouts, so a hung server fails instead of hanging. */
#include "core/platform.h"
#include "core/loop.h"
#include "core/util.h"
#include "kafka/broker.h"
#include "kafka/server.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../src/cli/config.h"

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ApiVersions v0, correlation id 7. */
static bool send_api_versions(int fd)
{
	static const uint8_t req[] = { 0, 0, 0, 14, 0, 18, 0, 0, 0, 0, 0, 7, 0, 4, 'u', 'n', 'i', 't' };
	return write(fd, req, sizeof(req)) == (ssize_t)sizeof(req);
}

/* Reads one response frame; returns its size, 0 on EOF, -1 on error. */
static ssize_t read_frame(int fd)
{
	uint8_t b[4096];
	size_t got = 0;
	while (got < 4) {
		ssize_t n = read(fd, b + got, 4 - got);
		if (n <= 0)
			return n == 0 && got == 0 ? 0 : -1;
		got += (size_t)n;
	}
	uint32_t size = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	size_t left = size;
	while (left > 0) {
		ssize_t n = read(fd, b, SILT_MIN(left, sizeof(b)));
		if (n <= 0)
			return -1;
		left -= (size_t)n;
	}
	return (ssize_t)size;
}

static sem_t g_held, g_release;

static void hold_cb(void *arg)
{
	(void)arg;
	sem_post(&g_held);
	sem_wait(&g_release);
}

static void *stop_thread(void *arg)
{
	kserver_stop(arg);
	return NULL;
}

/* Loop 0 accepts a connection and hands it to loop 1 after loop 1 has
 * already closed for shutdown (the loops close in no set order; under load
 * loop 0 may still be busy when loop 1 is done). The handoff used to run
 * inside loop_free after the server was gone and serve the request there:
 * a NULL server dereferenced in admission (SIGSEGV at shutdown). It must
 * be refused: the client sees the connection closed, without an answer. */
TEST(kafka_server_handoff_after_loop_closed_is_refused)
{
	struct silt_conf sc;
	config_defaults(&sc);
	struct kbroker_conf c = sc.k;
	snprintf(c.data_dir, sizeof(c.data_dir), "%s", test_tmpdir());
	REQUIRE(kbroker_open(&c) == 0);
	struct kserver *s = NULL;
	REQUIRE(kserver_start("127.0.0.1", 0, 2, false, &s) == 0);
	int port = kserver_port(s);
	sem_init(&g_held, 0, 0);
	sem_init(&g_release, 0, 0);

	/* Round-robin from loop 0: a -> 0, b -> 1, c -> 0; the next goes to 1.
	 * Each is answered once, so each has been adopted by its loop. */
	int fds[3];
	for (int i = 0; i < 3; i++) {
		fds[i] = connect_to(port);
		REQUIRE(fds[i] >= 0);
		REQUIRE(send_api_versions(fds[i]));
		CHECK(read_frame(fds[i]) > 0);
	}
	loop_post(kserver_loop(s, 0), hold_cb, NULL);
	sem_wait(&g_held);
	pthread_t t;
	pthread_create(&t, NULL, stop_thread, s);
	/* Loop 1 closed its connection: it has closed for good. */
	CHECK_EQ_INT(read_frame(fds[1]), 0);
	/* Queued in the backlog; loop 0 accepts it in the same iteration as it
	 * runs its own close, and hands it to loop 1. */
	int late = connect_to(port);
	REQUIRE(late >= 0);
	CHECK(send_api_versions(late));
	sem_post(&g_release);
	pthread_join(t, NULL);
	CHECK_EQ_INT(read_frame(fds[0]), 0);
	CHECK_EQ_INT(read_frame(fds[2]), 0);
	kserver_free(s);
	/* Refused (closed, no answer), whether the refusal ran on loop 1 or in
	 * loop_free. */
	ssize_t r = read_frame(late);
	CHECK(r <= 0);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	close(late);
	sem_destroy(&g_held);
	sem_destroy(&g_release);
	kbroker_close();
}
