/* mkfiles: create COUNT files of SIZE bytes under DIR, PER_DIR files per subdirectory
 * (DIR/dNNNN/fNNNNNNN). Contents are pseudo-random and differ from file to file, so hashes
 * cannot be shared. Used by scripts/bench.sh both to prepare trees (outside the timing) and as
 * the timed "create many small files" step, where a shell loop would measure the shell instead.
 *
 * usage: mkfiles DIR COUNT SIZE [PER_DIR]    (PER_DIR defaults to 1000)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse_count(const char *s, unsigned long long *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    unsigned long long count, size, per_dir = 1000;
    if (argc < 4 || argc > 5 || parse_count(argv[2], &count) || parse_count(argv[3], &size) ||
        (argc == 5 && (parse_count(argv[4], &per_dir) || per_dir == 0))) {
        fprintf(stderr, "usage: mkfiles DIR COUNT SIZE [PER_DIR]\n");
        return 2;
    }
    const char *dir = argv[1];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "mkfiles: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    size_t bufsize = size < (1u << 20) ? (size_t)size : (1u << 20);
    unsigned char *buf = malloc(bufsize ? bufsize : 1);
    if (!buf) {
        fprintf(stderr, "mkfiles: out of memory\n");
        return 1;
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    char path[4096];
    for (unsigned long long i = 0; i < count; i++) {
        if (i % per_dir == 0) {
            snprintf(path, sizeof path, "%s/d%04llu", dir, i / per_dir);
            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                fprintf(stderr, "mkfiles: %s: %s\n", path, strerror(errno));
                return 1;
            }
        }
        snprintf(path, sizeof path, "%s/d%04llu/f%07llu", dir, i / per_dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            fprintf(stderr, "mkfiles: %s: %s\n", path, strerror(errno));
            return 1;
        }
        unsigned long long left = size;
        while (left > 0) {
            size_t n = left < bufsize ? (size_t)left : bufsize;
            for (size_t j = 0; j < n; j += 8) { /* xorshift64: cheap, distinct per file */
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                memcpy(buf + j, &x, n - j < 8 ? n - j : 8);
            }
            ssize_t w = write(fd, buf, n);
            if (w < 0) {
                if (errno == EINTR) continue;
                fprintf(stderr, "mkfiles: %s: %s\n", path, strerror(errno));
                return 1;
            }
            left -= (unsigned long long)w;
        }
        if (close(fd) != 0) {
            fprintf(stderr, "mkfiles: %s: %s\n", path, strerror(errno));
            return 1;
        }
    }
    free(buf);
    return 0;
}
