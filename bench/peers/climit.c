/*
 * Peer: the practical limit of this machine for fan-out.
 *
 * A minimal epoll broadcast server in C: the first line is the nickname,
 * then every line goes to everyone else as "<nick> text", formatted once;
 * each receiver gets one write per loop turn (its lines of the turn
 * together); buffers are unbounded; no limits, no checks. twchat's
 * figures are reported as a ratio to this one.
 *
 *     cc -O2 -o climit bench/peers/climit.c && ./climit PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    char *data;
    size_t len, cap;
} buf_t;

typedef struct client {
    int fd;
    int index;          /* in the named list, or -1 */
    int dirty;          /* has output queued this turn */
    int want_out;       /* waiting for EPOLLOUT */
    char name[64];
    buf_t in, out;
} client_t;

static client_t **named;  /* everyone with a nickname, for broadcasts */
static int named_count, named_cap;
static client_t **dirty;  /* who has output this turn */
static int dirty_count, dirty_cap;
static int ep;

static void append(buf_t *b, const char *data, size_t len) {
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len) cap *= 2;
        b->data = realloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void queue(client_t *c, const char *data, size_t len) {
    append(&c->out, data, len);
    if (!c->dirty && !c->want_out) {
        c->dirty = 1;
        if (dirty_count == dirty_cap) {
            dirty_cap = dirty_cap ? dirty_cap * 2 : 1024;
            dirty = realloc(dirty, sizeof *dirty * dirty_cap);
        }
        dirty[dirty_count++] = c;
    }
}

static void broadcast(client_t *from, const char *msg, size_t len) {
    for (int i = 0; i < named_count; i++)
        if (named[i] != from) queue(named[i], msg, len);
}

static void close_client(client_t *c) {
    if (c->index >= 0) {
        named[c->index] = named[--named_count];
        named[c->index]->index = c->index;
    }
    c->fd = -c->fd - 1; /* closed: skipped by the flush, freed after it */
}

static void flush(client_t *c) {
    c->dirty = 0;
    if (c->fd < 0 || !c->out.len) return;
    ssize_t n = write(c->fd, c->out.data, c->out.len);
    if (n < 0 && errno != EAGAIN) return;
    if (n < 0) n = 0;
    memmove(c->out.data, c->out.data + n, c->out.len - (size_t)n);
    c->out.len -= (size_t)n;
    int want = c->out.len > 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
}

static void on_line(client_t *c, char *line, size_t len) {
    if (len && line[len - 1] == '\r') len--;
    if (!c->name[0]) {
        if (!len) return;
        if (len > sizeof c->name - 1) len = sizeof c->name - 1;
        memcpy(c->name, line, len);
        c->name[len] = 0;
        if (named_count == named_cap) {
            named_cap = named_cap ? named_cap * 2 : 1024;
            named = realloc(named, sizeof *named * named_cap);
        }
        c->index = named_count;
        named[named_count++] = c;
        char msg[160];
        int n = snprintf(msg, sizeof msg, "Welcome, %s!\r\n", c->name);
        queue(c, msg, (size_t)n);
        n = snprintf(msg, sizeof msg, "*** %s joined (%d online)\r\n", c->name, named_count);
        broadcast(c, msg, (size_t)n);
        return;
    }
    /* Formatted once, copied to every receiver's buffer. */
    static buf_t msg;
    msg.len = 0;
    append(&msg, "<", 1);
    append(&msg, c->name, strlen(c->name));
    append(&msg, "> ", 2);
    append(&msg, line, len);
    append(&msg, "\r\n", 2);
    broadcast(c, msg.data, msg.len);
}

static void on_readable(client_t *c) {
    char chunk[65536];
    for (;;) {
        ssize_t n = read(c->fd, chunk, sizeof chunk);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            close_client(c);
            return;
        }
        if (n < 0) break;
        append(&c->in, chunk, (size_t)n);
    }
    size_t start = 0;
    for (size_t i = 0; i < c->in.len; i++) {
        if (c->in.data[i] == '\n') {
            on_line(c, c->in.data + start, i - start);
            start = i + 1;
        }
    }
    memmove(c->in.data, c->in.data + start, c->in.len - start);
    c->in.len -= start;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: climit PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 4096)) {
        perror("climit");
        return 1;
    }
    ep = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    struct epoll_event events[1024];
    client_t **closed = NULL;
    int closed_count = 0, closed_cap = 0;
    for (;;) {
        int n = epoll_wait(ep, events, 1024, -1);
        for (int k = 0; k < n; k++) {
            client_t *c = events[k].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    client_t *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    nc->index = -1;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                    queue(nc, "What's your name?\r\n", 19);
                }
                continue;
            }
            if (c->fd < 0) continue;
            if (events[k].events & EPOLLOUT) flush(c);
            if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                on_readable(c);
                if (c->fd < 0) {
                    if (closed_count == closed_cap) {
                        closed_cap = closed_cap ? closed_cap * 2 : 64;
                        closed = realloc(closed, sizeof *closed * closed_cap);
                    }
                    closed[closed_count++] = c;
                }
            }
        }
        /* One write per receiver per turn. */
        for (int i = 0; i < dirty_count; i++) flush(dirty[i]);
        dirty_count = 0;
        for (int i = 0; i < closed_count; i++) {
            client_t *c = closed[i];
            close(-c->fd - 1);
            free(c->in.data);
            free(c->out.data);
            free(c);
        }
        closed_count = 0;
    }
}
