/* server.h - the Kafka listener: one event loop per thread, connections
 * spread round-robin across them, request framing, in-order responses,
 * pending (long-poll) requests, admission limits.
 *
 * Request flow: bytes -> kconn read buffer -> whole frame (size capped by
 * socket.request.max.bytes) copied into the kreq it becomes -> header
 * decoded (dispatch.c) -> handler -> response queued in request order ->
 * writev/sendfile when it reaches the head of the queue. */
#ifndef SILT_KAFKA_SERVER_H
#define SILT_KAFKA_SERVER_H

#include "core/platform.h"
#include "core/wbuf.h"

struct kserver;

/* Binds host:port and starts nthreads loop threads, under SCHED_BATCH when
 * sched_batch (thread_sched_batch). 0 or -errno. */
int kserver_start(const char *host, int port, int nthreads, bool sched_batch, struct kserver **out);
/* The bound port (useful with port 0). */
int kserver_port(const struct kserver *s);
/* Loop i (0 <= i < nthreads), or NULL: for tests that post work to it. */
struct loop;
struct loop *kserver_loop(struct kserver *s, int i);
/* Stops accepting, closes every connection (cancelling pending requests),
 * stops and joins the loop threads. Any thread but a loop thread. */
void kserver_stop(struct kserver *s);
/* Frees the stopped server. kafka_kick() may be called from any thread
 * until then (it posts to the stopped loops, harmlessly), so call this only
 * once every other thread that may kick has stopped too: the flusher
 * (kbroker_flusher_stop) and the housekeeping thread. */
void kserver_free(struct kserver *s);

/* The calling loop thread's decompression scratch buffer (kreq->kl); with
 * kl == NULL, a buffer private to the calling thread. */
struct kloop;
struct wbuf *kloop_scratch(struct kloop *kl);

#endif
