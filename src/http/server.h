/* server.h - the HTTP/1.1 server layer the S3 API sits on.
 *
 * One event loop per thread (core/loop.h); the listening socket is accepted
 * on loop 0 and connections are spread round-robin over the loops, as in
 * kafka/server.c. A connection is pinned to its loop for life.
 *
 * ONE REQUEST AT A TIME PER CONNECTION. The next pipelined request is parsed
 * only after the current response has been written completely, so responses
 * are in order by construction and a connection holds at most one request.
 *
 * REQUEST LIFE CYCLE (all callbacks run on the connection's loop thread):
 *
 *   on_head(req)        the head is parsed. The handler may answer at once
 *                       (http_respond*), pause the body (http_body_pause) to
 *                       do asynchronous work first, or simply return: then
 *                       the body is delivered.
 *   on_body(req, p, n)  a piece of the decoded body (chunked framing already
 *                       removed; never the head). Returns how many bytes it
 *                       took, 0..n. Taking fewer pauses delivery: the rest
 *                       stays buffered, the socket is no longer read once the
 *                       connection's buffer is full (backpressure), and
 *                       delivery resumes after http_body_resume(req). NULL:
 *                       bodies are read and thrown away.
 *   body_buf(req, &cap) optional, before a read of body bytes when the
 *                       body has a Content-Length and nothing is buffered:
 *                       a place of cap bytes to read them into (NULL: the
 *                       layer's buffer). The layer reads at most cap bytes,
 *                       never past the body, and then calls on_body with
 *                       that very pointer; on_body must take all of them.
 *                       Saves the copy out of the layer's buffer when the
 *                       handler keeps the bytes anyway.
 *   on_body_end(req)    the body is complete (called right after on_head for
 *                       requests without a body). Not called if the handler
 *                       already answered.
 *   on_writable(req)    a streamed response (http_respond_stream) that was
 *                       refused bytes has room again.
 *   on_abort(req)       the connection failed (peer gone, timeout, broken
 *                       chunked framing) before the handler finished its
 *                       response. The handler must still finish it (any
 *                       http_respond* or http_stream_end, which then only
 *                       release resources) -- right here, or later when its
 *                       asynchronous work returns. Optional.
 *   on_done(req, ok)    last call: the response was fully written (ok) or
 *                       abandoned (!ok). `req` and everything it points to
 *                       is invalid afterwards. Free per-request state here.
 *
 * Every request that reached on_head gets exactly one on_done, and only
 * after the handler answered. A handler must therefore always answer
 * eventually; answering an aborted request is harmless.
 *
 * ANSWERING HANDS THE REQUEST BACK: after http_respond, _ref, _file or
 * http_stream_end, on_done may already have run (when the call was made
 * outside a layer callback, e.g. from an http_req_post function, and the
 * response went out at once), so the caller must not touch req afterwards.
 * The same holds when http_respond_stream fails. on_done is never called
 * from inside an http_* call for an aborted request (it is posted), and
 * never from inside a layer callback.
 *
 * THREADS. Every http_* function below must be called on the request's loop
 * thread (req->loop). Work done on other threads comes back with
 * http_req_post(req, fn, arg) (a loop_post to req->loop), and fn then
 * answers. The request cannot vanish in between: it lives until the handler
 * has answered and on_done has run.
 *
 * EXPECT: 100-continue. "HTTP/1.1 100 Continue" is sent when the body is
 * first wanted, i.e. when on_head returns without answering or pausing, or
 * at http_body_resume. A handler that answers from on_head (e.g. 403) never
 * causes a 100; the connection then closes after the answer, because the
 * client may or may not send the body.
 *
 * UNREAD BODY. If the handler answers before the body is complete, further
 * body bytes are discarded. Up to HTTP_DRAIN_MAX more bytes are read and
 * dropped to keep the connection alive; beyond that (or with an
 * unacknowledged 100-continue) the response carries "Connection: close".
 *
 * RESPONSES. Headers first (http_resp_header*), then exactly one of:
 *   http_respond          body copied from memory (writev'd with the head);
 *   http_respond_ref      body referenced, released after it was sent;
 *   http_respond_file     a file range sent with sendfile(2);
 *   http_respond_stream   body produced in pieces: http_stream_write (with
 *                         backpressure via on_writable), http_stream_end.
 * The layer adds the status line (always HTTP/1.1), Date, Server: silt,
 * Content-Length (or Transfer-Encoding: chunked for a stream of unknown
 * length to an HTTP/1.1 client; close-delimited for HTTP/1.0) and
 * Connection when needed. A HEAD request gets the same head and no body:
 * pass the length the GET would have (body may be NULL), or a file range
 * (not read). 1xx, 204 and 304 responses never carry a body; 204 and 1xx
 * carry no Content-Length. A handler header "Connection: close" makes the
 * connection close after the response. The application adds
 * x-amz-request-id and friends itself.
 *
 * ERRORS THE LAYER ANSWERS ITSELF (malformed head 400, 414, 431, 501, 505,
 * broken chunked body 400, body over max_body 413) get a body from the
 * format_error hook (S3 XML), or "<status> <reason>: <detail>\n" in
 * text/plain. The connection closes after them.
 *
 * MEMORY per connection: a read buffer of HTTP_RBUF_INITIAL bytes, grown to
 * hold a large head (<= 96 KiB) or to HTTP_RBUF_BODY for fast body streaming,
 * shrunk again when the connection goes idle; a per-request arena (one
 * reused 4 KiB block plus larger blocks freed at request end); the output
 * buffer (the head, a copied body, or up to HTTP_STREAM_HIGH of streamed
 * data).
 *
 * TIMEOUTS (each ends the connection with one log line, no response):
 *   header_timeout_ms   from the first byte of a head to its end;
 *   idle_timeout_ms     keep-alive wait for the first byte of the next head;
 *   body_timeout_ms     no body progress while the layer wants body bytes
 *                       (not while the handler has paused the body);
 *   send_timeout_ms     no write progress while output is pending.
 * No timer runs while the handler works on a request or has paused the
 * body, and the socket is not read then, so a peer that leaves meanwhile
 * is noticed (on_abort) only when the layer next reads or writes. */
#ifndef SILT_HTTP_SERVER_H
#define SILT_HTTP_SERVER_H

#include "core/platform.h"
#include "core/loop.h"
#include "core/wbuf.h"
#include "http/parser.h"

#define HTTP_RBUF_INITIAL (16 * 1024)
#define HTTP_RBUF_BODY (256 * 1024)
#define HTTP_DRAIN_MAX (256 * 1024)
#define HTTP_STREAM_HIGH (256 * 1024)
#define HTTP_STREAM_LOW (64 * 1024)

struct http_server;
struct http_conn; /* private */

struct http_req {
	/* Read-only; valid until on_done. Views point into request-owned
	 * memory (the head is copied out of the read buffer). */
	struct http_head h;    /* method, target, path, query, headers, framing */
	uint64_t id;           /* per-server request counter, for logs */
	const char *peer;      /* "ip:port" */
	struct loop *loop;     /* the thread that owns this request */
	void *server_udata;    /* http_server_conf.udata */
	bool aborted;          /* the connection failed; answers go nowhere */
	/* For the application. */
	void *udata;
	/* Private to the layer. */
	struct http_conn *conn;
};

struct http_handler {
	void (*on_head)(struct http_req *req);
	size_t (*on_body)(struct http_req *req, const void *p, size_t n);
	uint8_t *(*body_buf)(struct http_req *req, size_t *cap);
	void (*on_body_end)(struct http_req *req);
	void (*on_writable)(struct http_req *req);
	void (*on_abort)(struct http_req *req);
	void (*on_done)(struct http_req *req, bool ok);
	/* Fills the response to an error the layer answers itself: append
	 * "Name: value\r\n" lines to hdrs and the body to body. `req` is NULL
	 * when the handler never saw the request (unparsable head, or a
	 * Content-Length over max_body); otherwise on_abort has run. Optional;
	 * runs on a loop thread. */
	void (*format_error)(void *server_udata, const struct http_req *req, int status,
			     const char *detail, struct wbuf *hdrs, struct wbuf *body);
};

struct http_server_conf {
	const char *host;        /* IPv4 literal; default "0.0.0.0" */
	int port;                /* 0 = ephemeral (see http_server_port) */
	int nthreads;            /* loop threads; default 1 */
	bool sched_batch;        /* loop threads run SCHED_BATCH (thread_sched_batch) */
	int max_conns;           /* default 10000; excess accepts are closed */
	int header_timeout_ms;   /* default 30000 */
	int idle_timeout_ms;     /* default 60000 */
	int body_timeout_ms;     /* default 30000 */
	int send_timeout_ms;     /* default 60000 */
	int linger_ms;           /* drain before close after an error; default 2000 */
	int64_t max_body;        /* 413 above this; default 5 GiB + 1 MiB of framing */
	size_t max_mem_body;     /* cap of http_respond's copy; default 64 MiB */
	const struct http_handler *handler;
	void *udata;
};

void http_server_conf_defaults(struct http_server_conf *c);
/* Binds, listens, starts the loop threads. 0 or -errno. */
int http_server_start(const struct http_server_conf *conf, struct http_server **out);
/* The bound TCP port (useful with port 0). */
int http_server_port(const struct http_server *s);
/* Stops accepting, closes every connection, stops and joins the loops. A
 * request still unanswered gets on_abort; the loop keeps running (timers,
 * posted work) for up to 2 s until the handler answers it, and then it
 * completes with on_done(req, false) on its loop. One still unanswered
 * after that is freed regardless, so work that may still point at it must
 * be posted to its loop (http_req_post), never held elsewhere. Any thread
 * but a loop thread. */
void http_server_stop(struct http_server *s);

/* Connections currently open and requests completed, summed over loops
 * (approximate while running; for tests and stats). */
int http_server_nconns(const struct http_server *s);
uint64_t http_server_nrequests(const struct http_server *s);

/* ---- per-request memory -------------------------------------------- */

/* Bump allocation freed in one go after on_done. 16-byte aligned. */
void *http_req_alloc(struct http_req *req, size_t n);
char *http_req_strndup(struct http_req *req, const char *s, size_t n);
/* The percent-decoded path, NUL-terminated, in the arena (computed once);
 * NULL when the path has a malformed escape or an encoded NUL. */
const char *http_req_path(struct http_req *req);

/* ---- body flow ----------------------------------------------------- */

/* Stop / restart body delivery (on_body / on_body_end). Pausing in on_head
 * also defers the 100 Continue. */
void http_body_pause(struct http_req *req);
void http_body_resume(struct http_req *req);

/* ---- responses ----------------------------------------------------- */

/* Appends a response header. name and value are copied; neither may
 * contain CR or LF (such headers are dropped with a log line). Headers
 * named Content-Length, Transfer-Encoding, Date or Server are the layer's
 * and are dropped. */
void http_resp_header(struct http_req *req, const char *name, const char *value);
void http_resp_headern(struct http_req *req, const char *name, const char *value, size_t vlen);
void http_resp_headerf(struct http_req *req, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Each returns 0, -EPIPE if the connection is already gone (the answer is
 * dropped, the request still completes), or -EALREADY if the request was
 * already answered (a handler bug; nothing is sent). */
int http_respond(struct http_req *req, int status, const void *body, size_t len);
int http_respond_ref(struct http_req *req, int status, const void *body, size_t len,
		     void (*release)(void *arg), void *arg);
/* Sends len bytes of fd from off. The layer does not close fd: release(arg)
 * is called once the range was sent, or when it will not be (error, abort,
 * HEAD), always on the loop thread. A file shorter than promised closes the
 * connection. */
int http_respond_file(struct http_req *req, int status, int fd, off_t off, size_t len,
		      void (*release)(void *arg), void *arg);
/* Starts a streamed response: content_length >= 0 is announced (and the
 * handler must then write exactly that many bytes), -1 = unknown. */
int http_respond_stream(struct http_req *req, int status, int64_t content_length);
/* Queues up to n bytes; returns how many were taken (fewer than n when the
 * output queue is over HTTP_STREAM_HIGH: wait for on_writable), or -EPIPE
 * once the connection is gone (then finish with http_stream_end). */
ssize_t http_stream_write(struct http_req *req, const void *p, size_t n);
/* Queues n bytes at p by reference, without copying them: the layer sends
 * them straight from p after what is already queued. p must stay valid and
 * unchanged until on_writable is called (which happens once they are all
 * sent) or the request ends (on_abort, on_done). Returns n, or fewer (as
 * http_stream_write: then it copied, e.g. with chunked framing), 0 while an
 * earlier reference is still being sent, or -EPIPE. After it returned > 0,
 * write nothing more before on_writable (which always follows). */
ssize_t http_stream_write_ref(struct http_req *req, const void *p, size_t n);
int http_stream_end(struct http_req *req);

/* Runs fn(arg) on req's loop thread; callable from any thread. */
void http_req_post(struct http_req *req, void (*fn)(void *arg), void *arg);

#endif
