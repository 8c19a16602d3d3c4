// The floor of FUSE on this machine: a file system that does no work at all.
//
// It mounts an empty directory through /dev/fuse (root, no fusermount), answers every request
// from memory (it keeps no files), and times a client in the same process doing one of these,
// first in a real directory (native) and then through the mount:
//   stat    stat(2) of N absent names: one LOOKUP each (an error reply is never cached)
//   create  open(O_CREAT|O_EXCL|O_WRONLY) + close of N new names: LOOKUP, CREATE, the parent's
//           GETATTR and an asynchronous RELEASE per file, as the kernel sends them to totofs
//   tar     what `tar xf` does per file without the data: create, futimens, fchown, fchmod,
//           close (LOOKUP, CREATE, three SETATTRs, a GETATTR before the chown, the parent's
//           GETATTR, RELEASE)
//   list    readdir + lstat of every entry of a directory of N files (`find -printf %s`): a
//           few READDIRPLUS requests in all; the cost is the kernel's inode per entry
// Mounted like totofs's overlay: default_permissions, readdirplus, 60 s entry and attribute
// timeouts, parallel directory operations, atomic O_TRUNC.
//
// Whatever a real FUSE daemon does per request comes on top of this floor, so a target that
// needs a file to cost less than the floor's time per file cannot be met by any FUSE daemon on
// the machine, whatever it does. The daemon has THREADS reader threads on /dev/fuse (totofs has
// three). `--pin` pins the client and the readers to CPU 0, to show the part of the floor that
// is waking a thread on another CPU.
//
// build: gcc -O2 -pthread -o /tmp/fuse_floor scripts/bench/fuse_floor.c
// usage: fuse_floor stat|create|tar|list N [THREADS] [--pin]
//        (as root, from a directory on the file system to compare with, e.g. the bench's ext4)

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum mode { STAT, CREATE, TAR, LIST };
static enum mode mode;
static long n;
static int dev = -1;
static uint64_t next_node = 2;
static pthread_mutex_t node_lock = PTHREAD_MUTEX_INITIALIZER;

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void reply(uint64_t unique, int error, const void *body, size_t len) {
    static __thread char buf[sizeof(struct fuse_out_header) + (1 << 17)];
    struct fuse_out_header *h = (struct fuse_out_header *)buf;
    h->len = sizeof(*h) + (error ? 0 : len);
    h->error = error;
    h->unique = unique;
    if (!error && len) memcpy(buf + sizeof(*h), body, len);
    if (write(dev, buf, h->len) < 0 && errno != ENOENT) die("write /dev/fuse");
}

static void fill_attr(struct fuse_attr *a, uint64_t ino, int dir) {
    memset(a, 0, sizeof(*a));
    a->ino = ino;
    a->mode = dir ? (S_IFDIR | 0755) : (S_IFREG | 0644);
    a->nlink = dir ? 2 : 1;
    a->blksize = 4096;
}

static void fill_entry(struct fuse_entry_out *e, uint64_t node) {
    memset(e, 0, sizeof(*e));
    e->nodeid = node;
    e->generation = 1;
    e->entry_valid = 60;
    e->attr_valid = 60;
    fill_attr(&e->attr, node, 0);
}

// One READDIRPLUS page of the LIST directory: entries f0..f(n-1), nodes 2.., from `offset`.
static size_t list_page(char *out, size_t size, uint64_t offset) {
    size_t used = 0;
    for (uint64_t i = offset; i < (uint64_t)n; i++) {
        char name[32];
        int len = snprintf(name, sizeof(name), "f%lu", (unsigned long)i);
        size_t rec = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + len);
        if (used + rec > size) break;
        struct fuse_direntplus *d = (struct fuse_direntplus *)(out + used);
        memset(d, 0, rec);
        fill_entry(&d->entry_out, i + 2);
        d->dirent.ino = i + 2;
        d->dirent.off = i + 1;
        d->dirent.namelen = len;
        d->dirent.type = DT_REG;
        memcpy(d->dirent.name, name, len);
        used += rec;
    }
    return used;
}

static void *reader(void *arg) {
    (void)arg;
    static __thread char buf[1 << 20 | 4096];
    static __thread char page[1 << 17];
    for (;;) {
        ssize_t got = read(dev, buf, sizeof(buf));
        if (got < 0) {
            if (errno == EINTR || errno == ENOENT) continue;
            if (errno == ENODEV) return NULL;  // unmounted
            die("read /dev/fuse");
        }
        struct fuse_in_header *in = (struct fuse_in_header *)buf;
        void *body = buf + sizeof(*in);
        switch (in->opcode) {
        case FUSE_INIT: {
            struct fuse_init_in *ii = body;
            struct fuse_init_out o = {0};
            o.major = FUSE_KERNEL_VERSION;
            o.minor = FUSE_KERNEL_MINOR_VERSION;
            o.max_readahead = ii->max_readahead;
            o.flags = FUSE_PARALLEL_DIROPS | FUSE_ATOMIC_O_TRUNC | FUSE_ASYNC_READ | FUSE_BIG_WRITES |
                      FUSE_DO_READDIRPLUS;
            o.max_background = 16;
            o.congestion_threshold = 12;
            o.max_write = 1 << 20;
            o.time_gran = 1;
            reply(in->unique, 0, &o, sizeof(o));
            break;
        }
        case FUSE_GETATTR:
        case FUSE_SETATTR: {
            struct fuse_attr_out o = {0};
            o.attr_valid = 60;
            fill_attr(&o.attr, in->nodeid, in->nodeid == FUSE_ROOT_ID);
            if (in->opcode == FUSE_SETATTR) {
                struct fuse_setattr_in *sa = body;
                if (sa->valid & FATTR_MODE) o.attr.mode = sa->mode;
            }
            reply(in->unique, 0, &o, sizeof(o));
            break;
        }
        case FUSE_LOOKUP:
            reply(in->unique, -ENOENT, NULL, 0);
            break;
        case FUSE_CREATE: {
            struct {
                struct fuse_entry_out e;
                struct fuse_open_out o;
            } r;
            memset(&r, 0, sizeof(r));
            pthread_mutex_lock(&node_lock);
            uint64_t node = next_node++;
            pthread_mutex_unlock(&node_lock);
            fill_entry(&r.e, node);
            r.o.fh = node;
            reply(in->unique, 0, &r, sizeof(r));
            break;
        }
        case FUSE_OPENDIR: {
            struct fuse_open_out o = {0};
            o.fh = 1;
            reply(in->unique, 0, &o, sizeof(o));
            break;
        }
        case FUSE_READDIRPLUS: {
            struct fuse_read_in *r = body;
            size_t size = r->size < sizeof(page) ? r->size : sizeof(page);
            reply(in->unique, 0, page, mode == LIST ? list_page(page, size, r->offset) : 0);
            break;
        }
        case FUSE_RELEASE:
        case FUSE_RELEASEDIR:
        case FUSE_FLUSH:
            reply(in->unique, 0, NULL, 0);
            break;
        case FUSE_FORGET:
        case FUSE_BATCH_FORGET:
            break;  // no reply
        case FUSE_DESTROY:
            reply(in->unique, 0, NULL, 0);
            return NULL;
        default:
            reply(in->unique, -ENOSYS, NULL, 0);
        }
    }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

// The client: the same work in `dir`, native or through the mount; seconds taken.
static double client(const char *dir) {
    char path[4096];
    struct stat st;
    stat(dir, &st);  // (through the mount: INIT and the root's attributes before the clock)
    double start = now();
    if (mode == LIST) {
        DIR *d = opendir(dir);
        if (!d) die("opendir");
        long seen = 0;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW)) die("fstatat");
            seen++;
        }
        closedir(d);
        if (seen != n) {
            fprintf(stderr, "listed %ld entries, not %ld\n", seen, n);
            exit(2);
        }
        return now() - start;
    }
    struct timespec times[2] = {{1, 0}, {2, 0}};
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/f%ld", dir, i);
        if (mode == STAT) {
            if (stat(path, &st) == 0 || errno != ENOENT) die("stat");
            continue;
        }
        int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0) die("open");
        if (mode == TAR && (futimens(fd, times) || fchown(fd, 0, 0) || fchmod(fd, 0644))) die("tar's calls");
        close(fd);
    }
    return now() - start;
}

int main(int argc, char **argv) {
    static const char *names[] = {"stat", "create", "tar", "list"};
    if (argc < 3) {
        fprintf(stderr, "usage: %s stat|create|tar|list N [THREADS] [--pin]\n", argv[0]);
        return 2;
    }
    mode = 4;
    for (int m = 0; m < 4; m++)
        if (strcmp(argv[1], names[m]) == 0) mode = m;
    n = atol(argv[2]);
    if (mode > LIST || n <= 0) {
        fprintf(stderr, "usage: %s stat|create|tar|list N [THREADS] [--pin]\n", argv[0]);
        return 2;
    }
    int threads = argc > 3 && argv[3][0] != '-' ? atoi(argv[3]) : 3;
    int pin = strcmp(argv[argc - 1], "--pin") == 0;
    if (threads < 1 || threads > 64) threads = 3;
    if (pin) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        if (sched_setaffinity(0, sizeof(set), &set)) die("sched_setaffinity");
    }

    // Native: the same client in a new directory here (files listed by `list` made first).
    char native[] = "fuse_floor.native.XXXXXX";
    if (!mkdtemp(native)) die("mkdtemp");
    if (mode == LIST) {
        char path[4096];
        for (long i = 0; i < n; i++) {
            snprintf(path, sizeof(path), "%s/f%ld", native, i);
            int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
            if (fd < 0) die("open");
            close(fd);
        }
    }
    double native_s = client(native);
    char rm[128];
    snprintf(rm, sizeof(rm), "rm -rf '%s'", native);
    if (system(rm) != 0) die("rm");

    char mnt[] = "/tmp/fuse_floor.XXXXXX";
    if (!mkdtemp(mnt)) die("mkdtemp");
    dev = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (dev < 0) die("open /dev/fuse");
    char opts[128];
    snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0,default_permissions", dev);
    if (mount("fuse_floor", mnt, "fuse.fuse_floor", MS_NOSUID | MS_NODEV, opts)) die("mount");
    pthread_t t[64];
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, reader, NULL);
    double fuse_s = client(mnt);
    if (umount2(mnt, MNT_DETACH)) die("umount");
    rmdir(mnt);

    printf("%s %ld files, %d reader thread(s)%s: native %.1f us per file, FUSE doing nothing %.1f us "
           "per file (%.2fx native)\n",
           names[mode], n, threads, pin ? ", pinned to CPU 0" : "", native_s * 1e6 / n, fuse_s * 1e6 / n,
           fuse_s / native_s);
    return 0;
}
