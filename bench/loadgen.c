/*
 * twchat load generator: N chat clients in one process on one epoll loop.
 *
 * Phases: connect and register every client (optionally waiting for each
 * one's welcome line), let the join chatter settle, then S senders send
 * lines flat out or paced at a total rate; every client counts the data
 * lines it receives, checks each sender's sequence for gaps and
 * reordering, and records the latency from the send time carried in the
 * line. Prints one JSON object on stdout.
 *
 * Written in C so the generator is never the bottleneck: a Python client
 * parsing a million lines a second would measure itself, not the server.
 * With --tls every client speaks TLS (OpenSSL, certificate not checked:
 * the server's is made for the run).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TAIL_MAX 4096
#define OUT_MAX 65536
#define RECV_CHUNK (256 * 1024)

enum { CONNECTING, HANDSHAKE, CONNECTED, JOINING, READY, CLOSED };

typedef struct {
    int fd;
    SSL *ssl; /* --tls */
    int state;
    int is_sender;
    int sender_index;
    int prompts; /* "? Choose a nickname:" lines seen (--password) */
    uint32_t tail_len;
    char *tail;
    int32_t *last_seq; /* per sender: last sequence number seen */
    /* WebSocket (--websocket): 1 while the upgrade is answered, 2 after */
    int ws_state;
    uint64_t frame_left;  /* payload bytes of the current frame still to come */
    int frame_text;       /* whether that payload is chat text (not a ping) */
    uint8_t hdr[14];
    uint32_t hdr_len;
    /* sender side */
    int64_t sent;
    int64_t next_due_ns;
    char *out;
    uint32_t out_len, out_off;
} client_t;

static struct {
    const char *host;
    int port;
    int clients, senders;
    int64_t lines;       /* per sender, flat out */
    double rate;         /* total lines per second; 0 = flat out */
    double duration;     /* seconds, with rate */
    int wait_welcome;    /* 1: ready after a "Welcome, " line */
    int send_nick;       /* 1: send a nickname line on connect */
    int sync;            /* 1: wait for a line on stdin after registering */
    int websocket;       /* 1: the browser's wire: HTTP upgrade, frames, JSON */
    double settle;       /* seconds of silence that count as settled */
    double register_timeout, idle_timeout;
    int max_connecting;
    int payload;         /* padding bytes per line */
    int rooms;           /* 0: everyone in one room; N: /join rK, in blocks */
    int ignore;          /* 1: every receiver ignores someone (not a sender) */
    int port2;           /* >0: the second half of the clients go here */
    int tls;             /* 1: every client speaks TLS */
    const char *password; /* answers "? Password for <nick>:" (accounts) */
} opt = {
    /* Named, so that a new field cannot shift the defaults of the others. */
    .host = "127.0.0.1",
    .port = 1234,
    .clients = 100,
    .senders = 10,
    .lines = 1000,
    .duration = 3,
    .wait_welcome = 1,
    .send_nick = 1,
    .settle = 0.5,
    .register_timeout = 60,
    .idle_timeout = 5,
    .max_connecting = 256,
    .payload = 16,
};

static client_t *cl;
static int ep;
static SSL_CTX *tls_ctx;
static int64_t delivered, gaps, reordered, other_lines, closed_early;
static int64_t bytes_in;
static uint32_t *lat_us;
static int64_t lat_n, lat_cap;
static int measuring;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void record_latency(int64_t ns) {
    if (lat_n == lat_cap) {
        lat_cap = lat_cap ? lat_cap * 2 : 1 << 20;
        lat_us = realloc(lat_us, lat_cap * sizeof *lat_us);
        if (!lat_us) die("realloc");
    }
    if (ns < 0) ns = 0;
    lat_us[lat_n++] = (uint32_t)(ns / 1000);
}

static ssize_t io_send(client_t *c, const char *buf, size_t len);
static void send_registration(client_t *c, int index);
static void send_lines(client_t *c, int index, int with_nick, int with_rest);

/* A data line carries "~<send ns>~<sender>~<seq>". */
static void handle_line(client_t *c, const char *line, size_t len, int64_t now) {
    const char *mark = memchr(line, '~', len);
    if (!mark) {
        /* Text lines, or the browser's JSON events. */
        const char *welcome = opt.websocket ? "\"type\":\"registered\"" : "Welcome, ";
        const char *in_room = opt.websocket ? "{\"type\":\"who\",\"room\":\"r" : "*** #r";
        static const char again[] = "? Choose a nickname:";
        if (c->state == CONNECTED && opt.password && len >= sizeof again - 1 &&
            !memcmp(line, again, sizeof again - 1) && ++c->prompts > 1) {
            /* The first is the greeting's; another means "busy, try again". */
            send_registration(c, (int)(c - cl));
            return;
        }
        static const char asked[] = "? Password for ";
        if (c->state == CONNECTED && opt.password && len >= sizeof asked - 1 &&
            !memcmp(line, asked, sizeof asked - 1)) {
            char out[160];
            int n = snprintf(out, sizeof out, "%s\r\n", opt.password);
            if (io_send(c, out, n) != n) die("send password");
            return;
        }
        if (c->state == CONNECTED && opt.wait_welcome && memmem(line, len, welcome, strlen(welcome))) {
            /* Logged in: now the room and the ignore list (sent earlier,
               they would answer a prompt the server may ask again). */
            if (opt.password) send_lines(c, (int)(c - cl), 0, 1);
            c->state = opt.rooms ? JOINING : READY;
        }
        else if (c->state == JOINING && len > strlen(in_room) &&
                 !memcmp(line, in_room, strlen(in_room)))
            c->state = READY; /* "*** #rK has N users: ..." after the /join */
        else
            other_lines++;
        return;
    }
    char *end;
    int64_t sent = strtoll(mark + 1, &end, 10);
    if (*end != '~') { other_lines++; return; }
    long sender = strtol(end + 1, &end, 10);
    if (*end != '~' || sender < 0 || sender >= opt.senders) { other_lines++; return; }
    long seq = strtol(end + 1, &end, 10);
    if (!measuring) { other_lines++; return; }
    delivered++;
    record_latency(now - sent);
    int32_t last = c->last_seq[sender];
    if (seq == last + 1) {
    } else if (seq > last + 1) {
        gaps += seq - last - 1;
    } else {
        reordered++;
    }
    if (seq > last) c->last_seq[sender] = (int32_t)seq;
}

static char *rbuf;

/* recv/send, through TLS with --tls: bytes, 0 at the end, -1 with errno
   EAGAIN when nothing can move now, -1 otherwise on an error. */
static ssize_t io_recv(client_t *c, char *buf, size_t len) {
    if (!c->ssl) return recv(c->fd, buf, len, 0);
    int n = SSL_read(c->ssl, buf, (int)len);
    if (n > 0) return n;
    int err = SSL_get_error(c->ssl, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    return err == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

static ssize_t io_send(client_t *c, const char *buf, size_t len) {
    if (!c->ssl) return send(c->fd, buf, len, MSG_NOSIGNAL);
    int n = SSL_write(c->ssl, buf, (int)len);
    if (n > 0) return n;
    int err = SSL_get_error(c->ssl, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    return -1;
}

/* One client frame (masked with zeros, which leaves the payload as is). */
static int ws_frame(char *out, const char *payload, int len) {
    int h = 0;
    out[h++] = (char)0x81;
    if (len < 126) {
        out[h++] = (char)(0x80 | len);
    } else {
        out[h++] = (char)(0x80 | 126);
        out[h++] = (char)(len >> 8);
        out[h++] = (char)(len & 0xff);
    }
    memset(out + h, 0, 4);
    h += 4;
    memmove(out + h, payload, len);
    return h + len;
}

static void send_registration(client_t *c, int index);

/* Drop frame headers (and non-text payloads) from buf in place; return the
   length of what is left: the JSON lines, as a text client would read them. */
static size_t ws_unframe(client_t *c, char *buf, size_t n) {
    size_t in = 0, out = 0;
    while (in < n) {
        if (c->frame_left) {
            size_t take = n - in < c->frame_left ? n - in : (size_t)c->frame_left;
            if (c->frame_text) memmove(buf + out, buf + in, take), out += take;
            in += take;
            c->frame_left -= take;
            continue;
        }
        c->hdr[c->hdr_len++] = (uint8_t)buf[in++];
        if (c->hdr_len < 2) continue;
        uint32_t need = 2;
        uint64_t len = c->hdr[1] & 0x7f;
        if (len == 126) need = 4;
        else if (len == 127) need = 10;
        if (c->hdr_len < need) continue;
        if (len == 126) len = ((uint64_t)c->hdr[2] << 8) | c->hdr[3];
        else if (len == 127) {
            len = 0;
            for (int i = 2; i < 10; i++) len = (len << 8) | c->hdr[i];
        }
        int opcode = c->hdr[0] & 0x0f;
        c->frame_text = opcode == 1 || opcode == 0;
        c->frame_left = len;
        c->hdr_len = 0;
    }
    return out;
}

static void on_readable(client_t *c) {
    for (;;) {
        ssize_t n = io_recv(c, rbuf, RECV_CHUNK);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            n = 0;
        }
        if (n == 0) {
            if (c->state != CLOSED) closed_early++;
            c->state = CLOSED;
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            return;
        }
        bytes_in += n;
        int64_t now = now_ns();
        char *data = rbuf;
        if (c->ws_state == 1) {
            /* The upgrade's answer ends with a blank line; frames follow. */
            char *end = memmem(rbuf, n, "\r\n\r\n", 4);
            if (!end || memcmp(rbuf, "HTTP/1.1 101", 12)) die("websocket upgrade");
            c->ws_state = 2;
            data = end + 4;
            n -= data - rbuf;
            send_registration(c, (int)(c - cl));
        }
        if (c->ws_state == 2) n = (ssize_t)ws_unframe(c, data, (size_t)n);
        const char *p = data, *limit = data + n;
        if (c->tail_len) {
            const char *nl = memchr(p, '\n', limit - p);
            size_t take = nl ? (size_t)(nl - p + 1) : (size_t)(limit - p);
            if (c->tail_len + take <= TAIL_MAX) {
                memcpy(c->tail + c->tail_len, p, take);
                c->tail_len += take;
            } else {
                c->tail_len = TAIL_MAX; /* absurd line: drop its content */
            }
            p += take;
            if (!nl) continue;
            handle_line(c, c->tail, c->tail_len - 1, now);
            c->tail_len = 0;
        }
        while (p < limit) {
            const char *nl = memchr(p, '\n', limit - p);
            if (!nl) {
                size_t rest = limit - p;
                if (!c->tail) c->tail = malloc(TAIL_MAX);
                if (rest > TAIL_MAX) rest = TAIL_MAX;
                memcpy(c->tail, p, rest);
                c->tail_len = rest;
                break;
            }
            handle_line(c, p, nl - p, now);
            p = nl + 1;
        }
        /* TLS hands out one record at a time: read until it has no more. */
        if (n < RECV_CHUNK && !c->ssl) return;
    }
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void set_events(client_t *c, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl mod");
}

static int flush_out(client_t *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = io_send(c, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        c->out_off += n;
    }
    c->out_off = c->out_len = 0;
    return 1;
}

static void append_line(client_t *c, int64_t now) {
    static const char pad[] = "the quick brown fox jumps over the lazy dog 0123456789 "
                              "the quick brown fox jumps over the lazy dog 0123456789 ";
    int pad_len = opt.payload < (int)sizeof pad - 1 ? opt.payload : (int)sizeof pad - 1;
    if (opt.websocket) {
        char line[512];
        int n = snprintf(line, sizeof line, "~%lld~%d~%lld %.*s", (long long)now,
                         c->sender_index, (long long)c->sent, pad_len, pad);
        c->out_len += ws_frame(c->out + c->out_len, line, n);
        c->sent++;
        return;
    }
    int n = snprintf(c->out + c->out_len, OUT_MAX - c->out_len, "~%lld~%d~%lld %.*s\r\n",
                     (long long)now, c->sender_index, (long long)c->sent, pad_len, pad);
    c->out_len += n;
    c->sent++;
}

static void start_connect(client_t *c, struct sockaddr_in *addr) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->state = CONNECTING;
    if (connect(fd, (struct sockaddr *)addr, sizeof *addr) < 0 && errno != EINPROGRESS)
        die("connect");
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl add");
}

/* Rooms are handed out in blocks, so evenly spread senders land one per room. */
static int room_of(int index) {
    int block = opt.clients / opt.rooms;
    int room = index / (block ? block : 1);
    return room < opt.rooms ? room : opt.rooms - 1;
}

/* The TLS handshake, step by step as the socket allows: 1 once done. */
static int handshake(client_t *c) {
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) return 1;
    int err = SSL_get_error(c->ssl, r);
    if (err == SSL_ERROR_WANT_READ) set_events(c, EPOLLIN);
    else if (err == SSL_ERROR_WANT_WRITE) set_events(c, EPOLLOUT);
    else {
        ERR_print_errors_fp(stderr);
        die("tls handshake");
    }
    return 0;
}

static void registered_transport(client_t *c, int index);

static void connected(client_t *c, int index) {
    if (c->state == HANDSHAKE) {
        if (handshake(c)) registered_transport(c, index);
        return;
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        errno = err;
        die("connect");
    }
    if (opt.tls) {
        c->ssl = SSL_new(tls_ctx);
        if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) die("SSL_new");
        SSL_set_connect_state(c->ssl);
        c->state = HANDSHAKE;
        if (handshake(c)) registered_transport(c, index);
        return;
    }
    registered_transport(c, index);
}

/* The byte stream is up (TCP, or TLS after its handshake): say hello. */
static void registered_transport(client_t *c, int index) {
    c->state = opt.wait_welcome ? CONNECTED : READY;
    set_events(c, EPOLLIN);
    if (opt.websocket) {
        char req[512];
        int n = snprintf(req, sizeof req,
                         "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nOrigin: http://%s:%d\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n",
                         opt.host, opt.port, opt.host, opt.port);
        if (io_send(c, req, n) != n) die("send upgrade");
        c->ws_state = 1;
        return;
    }
    send_registration(c, index);
}

/* The nickname (and the room), as lines or as WebSocket messages. */
/* The nickname, then the room and the ignore list (with --password: once
   logged in). */
static void send_registration(client_t *c, int index) {
    if (opt.send_nick) send_lines(c, index, 1, !opt.password);
}

/* Any of: the nickname; the room and the ignore list. */
static void send_lines(client_t *c, int index, int with_nick, int with_rest) {
    char nick[32], join[32], ignore[32], out[192];
    int a = with_nick ? snprintf(nick, sizeof nick, "%s%05d", c->is_sender ? "s" : "c", index)
                      : 0;
    int b = with_rest && opt.rooms ? snprintf(join, sizeof join, "/join r%d", room_of(index)) : 0;
    int d = with_rest && opt.ignore && !c->is_sender
                ? snprintf(ignore, sizeof ignore, "/ignore z%05d", index)
                : 0;
    int n;
    if (opt.websocket) {
        n = a ? ws_frame(out, nick, a) : 0;
        if (b) n += ws_frame(out + n, join, b);
        if (d) n += ws_frame(out + n, ignore, d);
    } else {
        n = a ? snprintf(out, sizeof out, "%s\r\n", nick) : 0;
        if (b) n += snprintf(out + n, sizeof out - n, "%s\r\n", join);
        if (d) n += snprintf(out + n, sizeof out - n, "%s\r\n", ignore);
    }
    if (n && io_send(c, out, n) != n) die("send nick");
}

static int ready_count(void) {
    int n = 0;
    for (int i = 0; i < opt.clients; i++) n += cl[i].state == READY;
    return n;
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen [--host H] [--port P] [--port2 P2] [--clients N] [--senders S]\n"
            "  [--lines L | --rate R --duration D] [--no-welcome] [--no-nick]\n"
            "  [--sync] [--settle S] [--register-timeout S] [--idle-timeout S]\n"
            "  [--payload BYTES] [--rooms R] [--websocket] [--ignore] [--tls]\n"
            "  [--password PW]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && ++i)
        if (ARG("--host")) opt.host = v;
        else if (ARG("--port")) opt.port = atoi(v);
        else if (ARG("--port2")) opt.port2 = atoi(v);
        else if (ARG("--clients")) opt.clients = atoi(v);
        else if (ARG("--senders")) opt.senders = atoi(v);
        else if (ARG("--lines")) opt.lines = atoll(v);
        else if (ARG("--rate")) opt.rate = atof(v);
        else if (ARG("--duration")) opt.duration = atof(v);
        else if (ARG("--settle")) opt.settle = atof(v);
        else if (ARG("--register-timeout")) opt.register_timeout = atof(v);
        else if (ARG("--idle-timeout")) opt.idle_timeout = atof(v);
        else if (ARG("--payload")) opt.payload = atoi(v);
        else if (ARG("--rooms")) opt.rooms = atoi(v);
        else if (ARG("--password")) opt.password = v;
        else if (!strcmp(a, "--ignore")) opt.ignore = 1;
        else if (!strcmp(a, "--no-welcome")) opt.wait_welcome = 0;
        else if (!strcmp(a, "--no-nick")) opt.send_nick = 0;
        else if (!strcmp(a, "--sync")) opt.sync = 1;
        else if (!strcmp(a, "--websocket")) opt.websocket = 1;
        else if (!strcmp(a, "--tls")) opt.tls = 1;
        else usage();
    }
    if (opt.tls) {
        tls_ctx = SSL_CTX_new(TLS_client_method());
        if (!tls_ctx) die("SSL_CTX_new");
        SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
        /* The sender's buffer may move and be written in parts. */
        SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
    if (opt.senders > opt.clients || opt.clients < 1) usage();

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(opt.port)};
    if (inet_pton(AF_INET, opt.host, &addr.sin_addr) != 1) usage();
    /* Two nodes of one chat: half the clients (and senders) on each. */
    struct sockaddr_in addr2 = addr;
    if (opt.port2 > 0) addr2.sin_port = htons(opt.port2);
    ep = epoll_create1(0);
    rbuf = malloc(RECV_CHUNK);
    cl = calloc(opt.clients, sizeof *cl);
    int32_t *seqs = malloc(sizeof(int32_t) * opt.clients * opt.senders);
    for (int i = 0; i < opt.clients * opt.senders; i++) seqs[i] = -1;
    for (int i = 0; i < opt.clients; i++) {
        cl[i].last_seq = seqs + (size_t)i * opt.senders;
        cl[i].fd = -1;
        /* Senders are spread over the clients, not the first ones. */
        int stride = opt.clients / opt.senders;
        if (i % stride == 0 && i / stride < opt.senders) {
            cl[i].is_sender = 1;
            cl[i].sender_index = i / stride;
            cl[i].out = malloc(OUT_MAX);
        }
    }

    client_t **sender_list = malloc(sizeof *sender_list * opt.senders);
    for (int i = 0, k = 0; i < opt.clients; i++)
        if (cl[i].is_sender) sender_list[k++] = &cl[i];

    struct epoll_event *events = malloc(sizeof *events * 1024);
    double cpu0 = cpu_seconds();
    int64_t t0 = now_ns();
    int next = 0, connecting = 0, ready = 0;
    int64_t deadline = t0 + (int64_t)(opt.register_timeout * 1e9);
    /* Phase 1: connect and register. */
    while (ready < opt.clients && now_ns() < deadline) {
        while (next < opt.clients && connecting < opt.max_connecting) {
            start_connect(&cl[next], next >= opt.clients / 2 ? &addr2 : &addr);
            next++;
            connecting++;
        }
        int n = epoll_wait(ep, events, 1024, 100);
        for (int k = 0; k < n; k++) {
            client_t *c = events[k].data.ptr;
            if (c->state == CONNECTING || c->state == HANDSHAKE) {
                connected(c, (int)(c - cl));
                if (c->state == READY) connecting--; /* --no-welcome */
            } else {
                int was = c->state;
                on_readable(c);
                if (was == CONNECTED && c->state != CONNECTED) connecting--;
            }
        }
        ready = ready_count();
    }
    int64_t t_registered = now_ns();
    double register_s = (t_registered - t0) / 1e9;
    if (ready < opt.clients) {
        printf("{\"error\": \"registration timed out\", \"clients\": %d, \"registered\": %d,"
               " \"register_s\": %.3f}\n",
               opt.clients, ready, register_s);
        return 1;
    }
    /* Phase 2: let the join chatter settle. */
    int64_t quiet_since = now_ns();
    int64_t settle_deadline = now_ns() + (int64_t)(opt.register_timeout * 1e9);
    while (now_ns() - quiet_since < (int64_t)(opt.settle * 1e9) && now_ns() < settle_deadline) {
        int n = epoll_wait(ep, events, 1024, 20);
        for (int k = 0; k < n; k++) on_readable(events[k].data.ptr);
        if (n > 0) quiet_since = now_ns();
    }
    if (opt.sync) {
        printf("{\"event\": \"registered\", \"register_s\": %.3f}\n", register_s);
        fflush(stdout);
        char line[64];
        if (!fgets(line, sizeof line, stdin)) return 1;
    }

    /* Phase 3: send and receive. */
    int64_t per_sender = opt.rate > 0 ? (int64_t)(opt.rate * opt.duration / opt.senders)
                                      : opt.lines;
    int64_t expected = per_sender * opt.senders * (int64_t)(opt.clients - 1);
    if (opt.rooms) {
        /* Each line reaches the rest of its sender's room only. */
        int *size = calloc(opt.rooms, sizeof *size);
        for (int i = 0; i < opt.clients; i++) size[room_of(i)]++;
        expected = 0;
        for (int k = 0; k < opt.senders; k++)
            expected += per_sender * (size[room_of((int)(sender_list[k] - cl))] - 1);
        free(size);
    }
    int64_t interval = opt.rate > 0 ? (int64_t)(1e9 * opt.senders / opt.rate) : 0;
    other_lines = 0;
    measuring = 1;
    double cpu1 = cpu_seconds();
    int64_t start = now_ns();
    for (int i = 0; i < opt.clients; i++) {
        client_t *c = &cl[i];
        if (!c->is_sender) continue;
        /* Stagger paced senders evenly over one interval. */
        c->next_due_ns = start + (interval * c->sender_index) / opt.senders;
    }
    int64_t last_progress = start, last_delivered = 0;
    int senders_done = 0;
    while (delivered < expected) {
        int64_t now = now_ns();
        int64_t wait_ns = 50 * 1000000LL;
        if (senders_done < opt.senders) {
            senders_done = 0;
            for (int k = 0; k < opt.senders; k++) {
                client_t *c = sender_list[k];
                if (c->state == CLOSED) {
                    senders_done++;
                    continue;
                }
                if (c->sent >= per_sender && c->out_len == 0) {
                    senders_done++;
                    continue;
                }
                if (c->out_len == 0) {
                    if (interval == 0) {
                        while (c->sent < per_sender && c->out_len < OUT_MAX - 256)
                            append_line(c, now);
                    } else {
                        while (c->sent < per_sender && c->next_due_ns <= now &&
                               c->out_len < OUT_MAX - 256) {
                            append_line(c, now);
                            c->next_due_ns += interval;
                        }
                    }
                    int r = c->out_len ? flush_out(c) : 1;
                    if (r < 0) c->state = CLOSED;
                    else if (r == 0) set_events(c, EPOLLIN | EPOLLOUT);
                }
                if (interval && c->sent < per_sender) {
                    int64_t until = c->next_due_ns - now;
                    if (until < wait_ns) wait_ns = until > 0 ? until : 0;
                } else if (interval == 0 && c->sent < per_sender && c->out_len == 0) {
                    wait_ns = 0; /* the socket took everything: write more now */
                }
            }
        }
        /* Round up: a sub-millisecond wait must not become a busy loop. */
        int timeout_ms = (int)((wait_ns + 999999) / 1000000LL);
        int n = epoll_wait(ep, events, 1024, timeout_ms);
        for (int k = 0; k < n; k++) {
            client_t *c = events[k].data.ptr;
            if (events[k].events & EPOLLOUT && c->out_len) {
                int r = flush_out(c);
                if (r < 0) c->state = CLOSED;
                else if (r > 0) set_events(c, EPOLLIN);
            }
            if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
        }
        now = now_ns();
        if (delivered != last_delivered) {
            last_delivered = delivered;
            last_progress = now;
        } else if (senders_done >= opt.senders &&
                   now - last_progress > (int64_t)(opt.idle_timeout * 1e9)) {
            break;
        }
    }
    int64_t end = now_ns();
    /* The drain ended at the last delivery, not at the idle timeout. */
    if (delivered < expected) end = last_progress;
    double elapsed = (end - start) / 1e9;
    double cpu = cpu_seconds() - cpu1;
    (void)cpu0;

    qsort(lat_us, lat_n, sizeof *lat_us, cmp_u32);
#define PCT(p) (lat_n ? lat_us[(int64_t)((lat_n - 1) * (p))] / 1000.0 : 0.0)
    int64_t sent_total = 0;
    for (int i = 0; i < opt.clients; i++) sent_total += cl[i].is_sender ? cl[i].sent : 0;
    printf("{\"clients\": %d, \"senders\": %d, \"sent\": %lld, \"expected\": %lld, "
           "\"delivered\": %lld, \"lost\": %lld, \"gaps\": %lld, \"reordered\": %lld, "
           "\"closed_early\": %lld, \"register_s\": %.3f, \"elapsed_s\": %.4f, "
           "\"deliveries_per_s\": %.0f, \"bytes_in\": %lld, "
           "\"latency_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}, "
           "\"loadgen_cpu_s\": %.3f, \"loadgen_cpu_pct\": %.1f}\n",
           opt.clients, opt.senders, (long long)sent_total, (long long)expected,
           (long long)delivered, (long long)(expected - delivered), (long long)gaps,
           (long long)reordered, (long long)closed_early, register_s, elapsed,
           elapsed > 0 ? delivered / elapsed : 0.0, (long long)bytes_in, PCT(0.5), PCT(0.99),
           lat_n ? lat_us[lat_n - 1] / 1000.0 : 0.0, cpu,
           elapsed > 0 ? 100.0 * cpu / elapsed : 0.0);
    return 0;
}
